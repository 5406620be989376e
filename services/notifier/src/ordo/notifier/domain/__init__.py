"""The notifier's decisions, pure (no I/O): what to tell people and how it reads
(``notifications``), digests of bursts (``digest``), trading performance from position changes
(``analytics``) and the end-of-day report (``report``)."""
