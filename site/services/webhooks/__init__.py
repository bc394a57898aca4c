"""Webhooks from processors (K7): received, stored and queued fast; applied by the worker through events."""
