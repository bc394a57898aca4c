"""Accounts and people: sign-up and confirmation, login checks, users, roles and invitations (accounts,
users). Depends only on platform."""
