"""The risk gate's pure domain: limits, exposure, pre-trade checks and trading state. No I/O."""
