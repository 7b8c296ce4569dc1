"use strict";
// Sends the token once; the server answers with an HttpOnly, SameSite=Strict session cookie.
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const response = await fetch("/coral/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ token: document.getElementById("token").value }),
  });
  if (response.ok) {
    window.location.assign("/");
  } else {
    const body = await response.json().catch(() => ({}));
    error.textContent = body.error || response.statusText;
  }
});
