// chc-equity: the little JS the pages need (vendored, no CDN; CSP allows only same-origin scripts).
"use strict";

// Confirm destructive form submissions (forms marked data-confirm).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// For API writes from page scripts: the CSRF token travels in a header, taken from /api/me.
window.chcApi = async function chcApi(path, body) {
  const me = await fetch("/api/me", { credentials: "same-origin" }).then((r) => r.json());
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf_token },
    body: JSON.stringify(body),
  });
  return response.json();
};

// Period pickers: change the period without a submit button.
document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});

// Vega-Lite charts: specs are embedded as JSON by the server (<script type="application/json">).
// Vega's expression *interpreter* is used (ast: true), so the CSP needs no 'unsafe-eval', and
// vega-embed's default stylesheet is off (the CSP allows only our own stylesheet; see app.css).
window.addEventListener("DOMContentLoaded", () => {
  const charts = document.querySelectorAll(".chart[data-spec]");
  if (!charts.length || typeof window.vegaEmbed !== "function") {
    return;
  }
  charts.forEach((el) => {
    const source = document.getElementById(el.dataset.spec);
    if (!source) {
      return;
    }
    const spec = JSON.parse(source.textContent);
    window
      .vegaEmbed(el, spec, {
        actions: false,
        ast: true,
        expr: window.vega.expressionInterpreter,
        defaultStyle: false,
        renderer: "svg",
        tooltip: { disableDefaultStyle: true },
      })
      .then(() => {
        // One accessible name for the whole chart: the sentence under it (the marks are aria-hidden,
        // and the data table next to it holds every number).
        el.querySelectorAll("svg").forEach((svg) => {
          svg.setAttribute("aria-hidden", "true");
          svg.removeAttribute("role");
          svg.querySelectorAll("[role]").forEach((node) => node.removeAttribute("role"));
        });
        el.setAttribute("role", "img");
        el.setAttribute("aria-label", spec.description || "Chart; the table below holds its numbers.");
        el.classList.add("rendered");
      })
      .catch((err) => {
        el.classList.add("failed");
        el.textContent = "Chart could not be drawn: " + err.message;
      });
  });
});
