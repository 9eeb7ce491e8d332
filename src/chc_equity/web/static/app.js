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
