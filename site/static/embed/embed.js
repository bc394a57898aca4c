/* Kassa buy buttons: <a href="…/pay/SLUG" data-kassa-button>Buy now</a> becomes a button in the
   merchant's brand colour. No dependencies, no eval, no inline styles: the look comes from a stylesheet
   on the Kassa server, so a strict CSP on the page only needs to allow that origin. If this script never
   runs, the anchor is still a working link to the checkout. */
(function () {
  "use strict";
  var script = document.currentScript;
  var origin = "";
  try { origin = new URL(script.src).origin; } catch (e) { return; }
  var loaded = {};

  function upgrade() {
    var anchors = document.querySelectorAll("a[data-kassa-button]");
    for (var i = 0; i < anchors.length; i++) {
      var a = anchors[i];
      if (a.origin !== origin) continue;
      // A link's public URL, or its signed test URL (H7) on a merchant's staging page.
      var match = /\/pay\/([a-z0-9]+)(?:\/test\/[\w-]+)?\/?$/i.exec(a.pathname);
      if (!match) continue;
      var slug = match[1].toLowerCase();
      a.setAttribute("data-kassa-slug", slug);
      a.classList.add("kassa-button");
      if (!loaded[slug]) {
        loaded[slug] = true;
        var link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = origin + "/embed/" + slug + ".css";
        document.head.appendChild(link);
      }
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", upgrade);
  else upgrade();
})();
