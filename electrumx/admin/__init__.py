"""Operating a live server: the admin RPC and its command-line client, metrics, the SSH shell."""
