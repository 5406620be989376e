"""The notifier: tells people what matters (fills, denials, halts, breakers, discrepancies)."""
