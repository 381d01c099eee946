"""Job state (the job table), the queue (Huey), and the workers that run jobs."""
