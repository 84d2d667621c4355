"""The fleet: Celery workers, their queues and the GPUs they hold."""
