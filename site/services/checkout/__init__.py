"""The buyer's checkout: sessions and attempts (checkout), reading and checking the buyer's form
(checkout_form) and the fraud and decline guards (risk)."""
