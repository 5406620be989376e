"""The risk gate: pre-trade checks on every proposal, the exposure they see, trading state."""
