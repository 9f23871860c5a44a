"""The runner: plan, context, executors (local and Ray), the result store and `rbg run`."""
