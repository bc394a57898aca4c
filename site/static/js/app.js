// Kassa back office: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  // Enhance each element once, even when htmx:load and DOMContentLoaded both reach it.
  var done = new WeakSet();
  function each(selector, root, fn) {
    var scope = root || document;
    var found = $all(selector, scope);
    if (scope.matches && scope.matches(selector)) found.unshift(scope);
    found.forEach(function (el) { if (!done.has(el)) { done.add(el); fn(el); } });
  }

  function toast(message, kind) {
    var region = document.getElementById(kind === "error" ? "error-region" : "toasts");
    if (!region) return;
    var item = document.createElement("div");
    item.className = "toast toast--" + (kind || "info");
    item.textContent = message;
    region.appendChild(item);
    window.setTimeout(function () { item.remove(); }, kind === "error" ? 10000 : 5000);
  }

  // htmx errors are never silent: show the server's message, or a generic one when the network failed.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var text = "";
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var alert = doc.querySelector(".alert, main p");
      text = alert ? alert.textContent.replace(/\s+/g, " ").trim() : "";
    } catch (e) { text = ""; }
    toast(text || (document.documentElement.lang === "nl" ? "Er ging iets mis (" + xhr.status + ")." :
      document.documentElement.lang === "fr" ? "Une erreur s'est produite (" + xhr.status + ")." :
      "Something went wrong (" + xhr.status + ")."), "error");
  });
  document.addEventListener("htmx:sendError", function () {
    toast(document.documentElement.lang === "nl" ? "Geen verbinding. Probeer het opnieuw." :
      document.documentElement.lang === "fr" ? "Pas de connexion. Réessayez." :
      "No connection. Try again.", "error");
  });

  function enhance(root) {
    // Selects that apply at once (language, role): submit their form on change.
    each("[data-autosubmit]", root, function (select) {
      select.addEventListener("change", function () { select.form.requestSubmit ? select.form.requestSubmit() : select.form.submit(); });
    });
    // Error summaries and dialogs take focus so screen readers announce them.
    each("[data-focus-on-load]", root, function (el) { el.focus(); });
    each("dialog[data-open-on-load]", root, function (dialog) {
      if (!dialog.open && dialog.showModal) dialog.showModal();
      dialog.addEventListener("close", function () { dialog.remove(); });
    });
    // Collapsible cards remember whether they were open.
    each("details[data-remember]", root, function (details) {
      var key = "kassa:card:" + details.id;
      var saved = window.localStorage.getItem(key);
      if (saved !== null) details.open = saved === "1";
      details.addEventListener("toggle", function () { window.localStorage.setItem(key, details.open ? "1" : "0"); });
    });
    each("[data-detect-timezone]", root, function (input) {
      try { input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || input.value; } catch (e) { /* keep UTC */ }
    });
    each("[data-colour-sync]", root, function (picker) {
      var text = document.getElementById(picker.getAttribute("data-colour-sync"));
      picker.addEventListener("input", function () { text.value = picker.value; text.dispatchEvent(new Event("input")); });
      text.addEventListener("input", function () { if (/^#[0-9a-f]{6}$/i.test(text.value)) picker.value = text.value; });
    });
    each("[data-brand-preview]", root, function (input) {
      input.addEventListener("input", function () {
        if (!/^#[0-9a-f]{6}$/i.test(input.value)) return;
        $all("[data-brand-target]").forEach(function (target) { target.style.setProperty("--brand", input.value); });
      });
    });
    each("[data-logo-preview]", root, function (input) {
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        var img = $("[data-logo-target]");
        if (!file || !img) return;
        img.src = URL.createObjectURL(file);
        img.alt = "";
        img.hidden = false;
      });
    });
    // Copy buttons: copy the target field's value; without JavaScript the field is selectable text.
    each("[data-copy]", root, function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var field = document.getElementById(button.getAttribute("data-copy"));
        if (!field) return;
        var done = function () {
          var label = button.getAttribute("data-copied-label") || "Copied";
          var original = button.textContent;
          button.textContent = label;
          toast(label, "success");
          window.setTimeout(function () { button.textContent = original; }, 2000);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value || field.textContent).then(done, function () { field.select(); document.execCommand("copy"); done(); });
        } else {
          field.select();
          document.execCommand("copy");
          done();
        }
      });
    });
  }

  // Server-sent events (HX-Trigger): close the open dialog, show a toast.
  document.addEventListener("kassa:close-dialog", function () { $all("dialog[open]").forEach(function (d) { d.close(); }); });
  document.addEventListener("kassa:toast", function (event) {
    var detail = event.detail || {};
    toast(detail.message || "", detail.kind || "success");
  });

  // The side panel (payment details, filters): focus its heading when it opens; close restores the page.
  function closePanel() {
    var slot = document.getElementById("panel-slot");
    if (slot && slot.firstElementChild) {
      slot.innerHTML = "";
      var back = document.querySelector("[data-panel-opener]");
      if (back) { back.focus(); back.removeAttribute("data-panel-opener"); }
      return true;
    }
    return false;
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.getAttribute && elt.getAttribute("hx-target") === "#panel-slot") {
      $all("[data-panel-opener]").forEach(function (el) { el.removeAttribute("data-panel-opener"); });
      elt.setAttribute("data-panel-opener", "1");
      closeIndexDropdowns();  // a menu left open would hang over the panel
    }
  });
  // Payments index: the quick filters' dropdowns (Status, + More) and the result tools' menus close once htmx
  // has applied the filters (only #results is swapped, so nothing else would close them) and on a click
  // outside them, like the account menu.
  var INDEX_DROPDOWNS = ".quickfilters details.dropdown[open], .results__tools details.dropdown[open]";
  function closeIndexDropdowns(except) {
    $all(INDEX_DROPDOWNS).forEach(function (d) { if (!except || !d.contains(except)) d.open = false; });
  }
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (event.detail.successful && elt && elt.matches && elt.matches("form.quickfilters")) closeIndexDropdowns();
  });
  document.addEventListener("click", function (event) { closeIndexDropdowns(event.target); });
  // A panel that redraws itself (the filter panel after a property change) keeps focus on the control the
  // user was on; only a newly opened panel moves focus to its heading.
  var panelFocusId = null;
  // What the user types into the panel while it redraws (after a property or operator change) would be lost
  // when the new panel replaces the old: remember each field edited since the request went out and put its
  // value back into the field of the same id.
  var panelEdits = null;
  function inPanel(el) { var slot = document.getElementById("panel-slot"); return slot && slot.contains(el); }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.target && event.detail.target.id === "panel-slot") panelEdits = {};
  });
  document.addEventListener("input", function (event) {
    var el = event.target;
    if (panelEdits && el.id && el.tagName === "INPUT" && inPanel(el)) panelEdits[el.id] = el.value;
  });
  document.addEventListener("htmx:afterRequest", function () { panelEdits = null; });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    var slot = document.getElementById("panel-slot");
    panelFocusId = active && active.id && slot && slot.contains(active) ? active.id : null;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "panel-slot") {
      Object.keys(panelEdits || {}).forEach(function (id) {
        var field = document.getElementById(id);
        if (field && field.tagName === "INPUT") field.value = panelEdits[id];
      });
      var again = panelFocusId && document.getElementById(panelFocusId);
      if (again && event.detail.target.contains(again)) { again.focus(); return; }
      var heading = event.detail.target.querySelector(".sidepanel h2");
      if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
    }
  });

  // Closing a dialog: links marked data-close-dialog close it in place instead of navigating.
  document.addEventListener("click", function (event) {
    var panelCloser = event.target.closest("[data-close-panel]");
    if (panelCloser && document.getElementById("panel-slot").contains(panelCloser)) {
      if (closePanel()) { event.preventDefault(); return; }
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var dialog = closer.closest("dialog");
      if (dialog && dialog.open) { event.preventDefault(); dialog.close(); }
    }
    // Menus built on <details> close when the user clicks elsewhere.
    $all("details.menu[open]").forEach(function (menu) { if (!menu.contains(event.target)) menu.open = false; });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      $all("details.menu[open], details.dropdown[open]").forEach(function (menu) { menu.open = false; });
      if (!document.querySelector("dialog[open]")) closePanel();
    }
  });

  // B12: the phone menu button (a disclosure): it shows and hides the main menu and the search, which the
  // stylesheet folds away on narrow screens once the button is there; Escape closes it and gives focus back.
  function navToggle() { return document.querySelector("[data-navtoggle]"); }
  function setNav(open) {
    var button = navToggle();
    if (!button) return;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.closest(".topbar").setAttribute("data-nav", open ? "open" : "closed");
  }
  function enhanceNav() {
    var button = navToggle();
    if (!button || !button.hidden) return;
    button.hidden = false;
    setNav(false);
    button.addEventListener("click", function () { setNav(button.getAttribute("aria-expanded") !== "true"); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") { setNav(false); button.focus(); }
    });
  }

  // B11: the link editor's library swaps only the line items: the page stays where it was (no jump when the
  // library closes or products come in), and focus moves to what came in without scrolling.
  var keptScroll = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    keptScroll = event.detail.target && event.detail.target.id === "items-panel" ? window.scrollY : null;
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (keptScroll === null) return;
    window.scrollTo(window.scrollX, keptScroll);
    keptScroll = null;
    var next = document.querySelector("#items-panel [data-focus-after-swap]");
    if (next) next.focus({ preventScroll: true });
  });

  document.addEventListener("DOMContentLoaded", function () { enhanceNav(); enhance(document); });
  document.addEventListener("htmx:load", function (event) { enhance(event.detail.elt); });
})();
