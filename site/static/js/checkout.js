// Kassa checkout: progressive enhancement only (the form posts without it); all text comes from data-msg-*.
(function () {
"use strict";
const $ = (s, r) => (r || document).querySelector(s), $$ = (s, r) => [...(r || document).querySelectorAll(s)];
const on = (x, ev, fn) => x && x.addEventListener(ev, fn), dig = (v) => v.replace(/\D/g, "");
const mk = (t, props) => Object.assign(document.createElement(t), props);
const attr = (x, a, v) => (v ? x.setAttribute(a, v) : x.removeAttribute(a), v);
$$("[data-autosubmit]").forEach((s) => on(s, "change", () => s.form && s.form.submit()));
const F = $("#checkout-form"), CTL = "input,select,textarea";
if (!F) return;
const msg = (k) => F.getAttribute("data-msg-" + k) || k;
// Q12: billing and shipping countries come as one list of names (#countries, "|"-separated; without this script
// the buyer types the name); each of their fields becomes a <select> of it, unless it holds text that is none.
const cl = $("#countries"), names = cl ? cl.dataset.names.split("|") : [], low = (v) => v.trim().toLowerCase();
$$("input[data-country]", F).forEach((x) => {
  const s = mk("select", { id: x.id, name: x.name, required: 1 }), v = low(x.value), i = names.findIndex((n) => low(n) === v);
  if (v && i < 0) return;
  names.forEach((n, j) => s.add(new Option(n, n, 0, j === i)));
  ["autocomplete", "aria-invalid", "aria-describedby"].forEach((a) => attr(s, a, x.getAttribute(a)));
  x.replaceWith(s);
});
const num = $("#f-card_number"), cvc = $("#f-card_cvc"), same = $("#f-shipping_same"), sum = $("#error-summary");
const pay = $("#pay-button"), payNodes = pay ? [...pay.childNodes] : [];
const dirty = new WeakSet(), shown = new WeakSet();
let busy = false, last = "";

const AX = "American Express", DC = "Diners Club";
const BRANDS = [[AX, /^3[47]/, [15]], [DC, /^3(0[0-5]|095|[689])/, [14, 16]], ["JCB", /^35(2[89]|[3-8])/, [16]],
  ["Visa", /^4/, [16]], ["Mastercard", /^(5[1-5]|2(22[1-9]|2[3-9]|[3-6]|7[01]|720))/, [16]],
  ["UnionPay", /^62/, [16, 17, 18, 19]], ["Discover", /^6(011|4[4-9]|5)/, [16]]]; // name, prefix, lengths
const brand = (d) => BRANDS.find((b) => b[1].test(d)) || ["", 0, [12, 13, 14, 15, 16, 17, 18, 19]];
const sum10 = (d, f) => [...d].reduce((s, x, i) => s + f(x, i), 0) % 10 === 0;
const luhn = (d) => sum10([...d].reverse(), (x, i) => +(i % 2 ? "0246813579"[x] : x));
const aba = (d) => sum10(d, (x, i) => x * [3, 7, 1][i % 3]);

// (value, digits before caret, deleting: -1 back, 1 forward) → [value, digits before caret]
const only = (max) => (v, n) => [dig(v).slice(0, max), n];
const FMT = {
  card_number(v, n, del) {
    let d = dig(v);
    if (del && d === dig(last)) { if (del < 0) n--; d = d.slice(0, n) + d.slice(n + 1); } // only a space went: take a digit
    const b = brand(d), out = [];
    d = d.slice(0, Math.max(...b[2]));
    const g = b[0] === AX || (b[0] === DC && d.length < 15) ? [4, 6, 5] : [4, 4, 4, 4, 3];
    for (let i = 0, k = 0; i < d.length; i += g[k++]) out.push(d.slice(i, i + g[k]));
    return [out.join(" "), n];
  },
  card_expiry(v, n, del) { // "2" → "02 / ", "1" waits; "12/29", "1229", "12 / 2029" → "12 / 29"
    let d = dig(v);
    if (/^\D*\d\D/.test(v) || /^([2-9]|1[3-9])/.test(d)) d = "0" + d;
    const ok = /^(0[1-9]|1[0-2])/.test(d);
    let y = ok ? d.slice(2) : "";
    y = /^20\d\d/.test(y) ? y.slice(2, 4) : y.slice(0, /^20/.test(y) ? 3 : 2);
    return [ok ? d.slice(0, 2) + (y || !del ? " / " + y : "") : d.slice(0, 1), n];
  },
  card_cvc: only(4), routing_number: only(9), account_number: only(17),
};
function reformat(x, e) {
  const f = FMT[x.name];
  if (!f) return;
  const v = x.value, t = (e && e.inputType) || "", end = x.selectionStart === v.length;
  let [out, n] = f(v, dig(v.slice(0, x.selectionStart || 0)).length, /^delete/.test(t) ? (/Backward/.test(t) ? -1 : 1) : 0), p;
  if (out !== v) {
    x.value = out;
    if (document.activeElement === x) { // caret after as many digits as before
      for (p = end ? out.length : 0; n > 0 && p < out.length; p++) if (/\d/.test(out[p])) n--;
      x.setSelectionRange(p, p);
    }
  }
  if (x !== num) return;
  const b = brand(dig(last = out))[0], tag = $("[data-card-brand]", F), max = b && b !== AX ? 3 : 4;
  if (tag) tag.textContent = b;
  if (cvc) { cvc.maxLength = max; cvc.value = cvc.value.slice(0, max); if (shown.has(cvc)) check(cvc); }
}

const RULES = { // (value, digits) → data-msg-* key or ""
  card_number: (v, d) => !brand(d)[2].includes(d.length) ? "card-incomplete" : luhn(d) ? "" : "card-invalid",
  card_expiry: (v, d, m = /^(0[1-9]|1[0-2]) ?\/ ?(\d\d)$/.exec(v), t = new Date()) => !m ? "expiry-incomplete"
    : m[2] * 12 + +m[1] < (t.getFullYear() - 2000) * 12 + t.getMonth() + 1 ? "expiry-past" : "",
  card_cvc: (v, d, b = brand(dig(num.value))[0]) => (b === AX ? [4] : b ? [3] : [3, 4]).includes(d.length) ? "" : "cvc-incomplete",
  routing_number: (v, d) => /^\d{9}$/.test(v) && aba(d) ? "" : "routing",
  account_number: (v) => /^\d{4,17}$/.test(v) ? "" : "account",
  email: (v) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v) ? "" : "email",
  account_holder_name: () => "",
  iban: (v, d, i = v.replace(/[\s-]/g, "").toUpperCase()) => /^[A-Z]{2}\d\d[A-Z0-9]{11,30}$/.test(i) && // Q10: mod-97
    [...i.slice(4) + i.slice(0, 4)].reduce((r, c) => (r * (c > "9" ? 100 : 10) + parseInt(c, 36)) % 97, 0) === 1 ? "" : "iban",
};
function problem(x) {
  const n = x.name, v = x.value.trim(), r = RULES[n];
  if (x.type === "checkbox") return x.checked || !x.required && !/_mandate$/.test(n) ? "" : /_mandate$/.test(n) ? "mandate" : "required";
  return !v ? (x.required || r ? "required" : "") : r ? r(v, dig(v)) : "";
}
function name(x) { // B8: the summary names each field: its label's own text, with the address it is part of
  const l = x.labels && x.labels[0], p = /^(billing|shipping)_/.exec(x.name);
  const t = l ? [...l.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim() : x.name;
  return p ? msg(p[1]) + " · " + t : t;
}
function check(x) { // show or clear the error; returns its key
  const k = problem(x), id = x.id + "-error", w = x.closest(".field") || x.parentNode;
  let slot = document.getElementById(id);
  if (!slot) { if (!k) return k; w.append(slot = mk("p", { className: "field__error", id })); }
  slot.textContent = k && msg(k);
  slot.hidden = !k;
  w.classList.toggle("field--error", !!k);
  attr(x, "aria-invalid", k && "true");
  attr(x, "aria-describedby", (x.getAttribute("aria-describedby") || "").split(" ").filter((i) => i && i !== id).concat(k ? id : []).join(" "));
  shown[k ? "add" : "delete"](x);
  return k;
}

// Only the chosen method and (unless "same as billing") the shipping fields show and post.
function sync() {
  const m = $("input[name=method]:checked", F), s = $("[data-shipping-fields]", F);
  const off = (b) => $$(CTL, b).forEach((x) => { x.disabled = !!x.closest("[hidden]"); });
  $$("[data-method-section]", F).forEach((x) => { x.hidden = !!m && x.dataset.methodSection !== m.value; off(x); });
  if (same && s) s.hidden = same.checked && !same.disabled; // in a hidden card section it does not apply
  if (s) off(s);
}
// An optional field waits behind its "+ Add …" button unless it holds something or an error: the page's own
// buttons (promo code, VAT number) and an address's line 2, whose buttons are made here (Q12: without this
// script the fields simply show).
const reveal = (b, x) => {
  const f = x.closest(".field"), open = (y) => { f.hidden = !y; b.hidden = y; };
  open(!!x.value || f.classList.contains("field--error"));
  on(b, "click", () => { open(true); sync(); x.focus(); });
};
$$("[data-reveal]", F).forEach((b) => { const x = $("#f-" + b.dataset.reveal, F); if (x) reveal(b, x); });
$$("input[name$=_line2]", F).forEach((x) => {
  const b = mk("button", { type: "button", className: "linkbtn", textContent: msg("line2") });
  b.dataset.reveal = x.name;
  x.closest(".field").before(b);
  reveal(b, x);
});
$$(CTL, F).forEach((x) => { if (x.closest(".field--error")) shown.add(x); }); // the server's stay until an edit
// maxlength would cut pastes like "4242 4242 4242 4242" or "12 / 2029"; digits are capped per brand instead.
[num, $("#f-card_expiry")].forEach((x) => { if (x) { x.removeAttribute("maxlength"); reformat(x); } });
sync();
const first = $("[data-focus]"); // a message the server rendered after a refused POST
if (first) first.focus();

on(F, "change", (e) => { if (e.target.name === "method" || e.target === same) sync(); });
// No error while a field is first typed: on leaving it or on submit, then live until fixed.
on(F, "input", (e) => { const x = e.target; reformat(x, e); dirty.add(x); if (shown.has(x)) check(x); });
on(F, "focusout", (e) => { if (dirty.has(e.target)) check(e.target); });
on(F, "submit", (e) => {
  if (busy) return e.preventDefault();
  const bad = $$(CTL, F).filter((x) => x.closest(".field") && !x.disabled && !x.closest("[hidden]") && check(x));
  if (!bad.length) {
    busy = true;
    if (sum) sum.hidden = true;
    if (pay) setTimeout(() => { pay.disabled = true; pay.textContent = msg("processing"); }); // so a named button still posts
    return;
  }
  e.preventDefault();
  if (!sum) return bad[0].focus();
  const ul = mk("ul");
  bad.forEach((x) => ul.appendChild(mk("li")).append(mk("a", { href: "#" + x.id, textContent: name(x) + ": " + msg(problem(x)) })));
  sum.textContent = "";
  sum.append(mk("h2", { textContent: sum.dataset.title || "" }), ul);
  sum.hidden = false;
  sum.focus();
});
on(sum, "click", (e) => { // focus the field, not only scroll to it
  const x = e.target.hash && $(e.target.hash);
  if (x) { e.preventDefault(); x.focus(); }
});
const idle = () => { // pay works again
  if (!pay) return;
  busy = pay.disabled = false;
  pay.textContent = "";
  pay.append(...payNodes);
};
on(window, "pageshow", (e) => { if (e.persisted) idle(); }); // back/forward cache
on(F, "kassa:idle", idle); // checkout-stripe.js: Stripe refused the details before anything was posted
})();
