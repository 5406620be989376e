"""The reconciler's pure domain: compare what the venue holds with what the OMS believes. No I/O."""
