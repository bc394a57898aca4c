"""The API (I1, I3): API keys, and the Stripe-shaped resources the official `stripe` client reads and writes.

It sits above the services it exposes (links, payments, disputes) and calls them: an API call is the same use
case as the page's, never a second way to do it."""
