"""The signal service: webhooks, the signal API and SubmitSignal in; SignalAccepted out."""
