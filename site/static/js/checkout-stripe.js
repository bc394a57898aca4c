// Kassa live checkout (K6) and subscription card-update page (K8): Stripe's Payment Element in place of Kassa's card
// and bank fields. Card data goes from Stripe's frames to Stripe; the form posts only the PaymentMethod id Stripe.js
// made. The mount's data attributes say how: data-mode "payment" (checkout: amount, currency) or "setup" (saving a
// card for later charges: currency only). All text from the page.
(function () {
"use strict";
const $ = (s) => document.querySelector(s);
const next = $("#next-action");
if (next && window.Stripe) { // the bank wants the buyer: run it, then let the server ask Stripe how it ended
  const d = next.dataset, done = () => location.replace(d.finishUrl);
  Stripe(d.stripeKey, { locale: d.locale }).handleNextAction({ clientSecret: d.clientSecret }).then(done, done);
  return;
}
const mount = $("#f-payment_method"), F = $("#checkout-form");
if (!mount || !F || !window.Stripe) return; // without Stripe.js the "needs JavaScript" note stays up
const d = mount.dataset, pay = $("#pay-button"), err = $("#f-payment_method-error"), box = mount.parentNode;
const token = F.querySelector("input[name=payment_method]"), val = (n) => (F.elements[n] || {}).value || "";
const stripe = Stripe(d.stripeKey, { locale: d.locale });
const opts = d.mode === "setup" ? { mode: "setup", currency: d.currency }
  : { mode: "payment", amount: +d.amount, currency: d.currency };
if (d.future) opts.setupFutureUsage = d.future;
const elements = stripe.elements(opts), element = elements.create("payment");
// Q3/Q4: the buyer changed a quantity or price: the Element shows the server's new total (the charge itself is
// always the server's total at confirm time).
if (opts.mode === "payment") F.addEventListener("kassa:total", (e) => elements.update({ amount: e.detail }));
let busy = false; // one PaymentMethod per click: a double click while Stripe answers makes no second one
function show(message) {
  busy = false;
  pay.disabled = false;
  err.textContent = message || "";
  err.hidden = !message;
  box.classList.toggle("field--error", !!message);
  F.dispatchEvent(new Event("kassa:idle"));
}
element.on("ready", () => { box.querySelector("[data-needs-js]").hidden = true; pay.disabled = false; });
element.mount(mount);
F.addEventListener("submit", async (e) => {
  if (e.defaultPrevented) return; // Kassa's own fields first (checkout.js): nothing goes to Stripe yet
  e.preventDefault();
  if (busy) return;
  busy = true;
  pay.disabled = true;
  token.value = "";
  const checked = await elements.submit();
  if (checked.error) return show(checked.error.message);
  const name = [val("first_name"), val("last_name")].join(" ").trim(), email = val("email");
  const made = await stripe.createPaymentMethod({ elements, params: { billing_details: {
    ...(email && { email }), ...(name && { name }) } } });
  if (made.error) return show(made.error.message);
  token.value = made.paymentMethod.id;
  F.submit();
});
})();
