"""From a validated project to files on disk: plan, run, write."""
