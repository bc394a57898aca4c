// Q3/Q4: a changed quantity or price is re-priced by the server ("Update total" posted with only the choices);
// every data-live figure is copied from its answer. The button (the no-JS way) goes, so Enter still pays.
// Q12: its own file, loaded (after checkout.js) only by a checkout whose order summary has a line to adjust.
(function () {
"use strict";
const F = document.getElementById("checkout-form"), rp = document.querySelector("[data-reprice-button]");
if (!F || !rp) return;
const $$ = (s) => [...document.querySelectorAll(s)];
let rt, rn = 0;
const reprice = () => {
  const b = new FormData(), k = ++rn;
  for (const [n, v] of new FormData(F)) if (/^(csrf_token|lang|qty_|price_)/.test(n)) b.append(n, v);
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
      x.textContent = y.textContent;
      x.hidden = y.hidden;
      if (m && m !== x.dataset.minor) F.dispatchEvent(new CustomEvent("kassa:total", { detail: +(x.dataset.minor = m) }));
    });
    F.dataset.priced = k; // what a test waits on
  }, () => {});
};
rp.remove();
$$("[data-reprice]").forEach((x) => x.addEventListener("input", () => { clearTimeout(rt); rt = setTimeout(reprice, 300); }));
})();
