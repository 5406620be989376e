"""The shared service kit: what every Ordo service is built from, written once.

Settings, the NATS broker with its delivery policy, the store with its outbox and inbox, circuit
breakers, telemetry, logs, the ops HTTP endpoints and the service runner.
"""
