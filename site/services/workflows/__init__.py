"""Workflows (W1, W2, W5–W7): triggers on payments, enrollment criteria in the payments index's filter
language, actions (send email, create task) and the Tasks inbox."""
