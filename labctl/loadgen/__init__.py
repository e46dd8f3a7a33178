"""Files that run inside the Locust process (never imported by labctl itself)."""
