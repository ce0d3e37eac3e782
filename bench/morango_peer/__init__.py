"""The Morango side of bench/bench_peer_morango.py: a Django project with one syncable model,
run only inside the separate virtual environment the bench makes (never the project's)."""
