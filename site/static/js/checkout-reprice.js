// Q3/Q4/Q6: a changed quantity, price, country or VAT number is re-priced by the server ("Update total" posted
// with only the choices); every data-live figure is copied from its answer. The button (the no-JS way) goes, so
// Enter still pays. Q2: the promo code's "Apply" and "Remove" re-price too.
// Q12: its own file, loaded (after checkout.js) only by a checkout that can re-price (a line to adjust, tax
// collected, or a promo code offered).
(function () {
"use strict";
const F = document.getElementById("checkout-form"), rp = document.querySelector("[data-reprice-button]");
if (!F) return;
const $ = (s) => document.querySelector(s), $$ = (s) => [...document.querySelectorAll(s)];
let rt, rn = 0;
const reprice = () => {
  const b = new FormData(), k = ++rn;
  for (const [n, v] of new FormData(F)) if (/^(csrf_token|lang|qty_|price_|promo|tax_c|vat_|billing_c)/.test(n)) b.append(n, v);
  b.set("action", "update");
  fetch(F.getAttribute("action"), { method: "POST", body: b }).then((r) => r.text()).then((h) => {
    if (k !== rn) return; // an answer older than the last change
    const d = new DOMParser().parseFromString(h, "text/html");
    $$("[data-live],[data-reprice]").forEach((x) => {
      const y = d.getElementById(x.id), m = y && y.dataset.minor;
      if (!y) return;
      if (x.value != null) {
        const v = y.getAttribute("aria-invalid");
        v ? x.setAttribute("aria-invalid", v) : x.removeAttribute("aria-invalid");
        return x.parentNode.classList.toggle("field--error", !!v);
      }
      x.innerHTML = y.innerHTML; // the server's own escaped markup (Q2: the promo row, Q6: the tax rows)
      x.hidden = y.hidden;
      if (m && m !== x.dataset.minor) F.dispatchEvent(new CustomEvent("kassa:total", { detail: +(x.dataset.minor = m) }));
    });
    pb();
    F.dataset.priced = k; // what a test waits on
  }, () => {});
};
// Q2: "Apply" and "Remove" as buttons, not submits (Enter still pays); the new promo row's "Remove" too.
const pb = () => $$("[name=action]").forEach((b) => { b.type = "button"; });
pb();
document.addEventListener("click", (e) => {
  const b = e.target.closest && e.target.closest("[name=action]");
  if (b) { if (b.value < "up") $("#f-promo").value = ""; reprice(); }
});
if (rp) rp.remove();
// Q6: the billing country picks the tax rate when the link asks for the address
$$($("#tax") ? "[data-reprice],#f-billing_country" : "[data-reprice]").forEach((x) => x.addEventListener("input", () => { clearTimeout(rt); rt = setTimeout(reprice, 300); }));
})();
