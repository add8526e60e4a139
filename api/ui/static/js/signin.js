"use strict";
/* Check the key against the API before keeping it, then go where the user was headed. */
document.getElementById("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = document.getElementById("api-key").value.trim();
  const error = document.getElementById("signin-error");
  const response = await fetch("/v1/models", { headers: { Authorization: "Bearer " + value } });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    error.textContent = (body.error && body.error.message) || `HTTP ${response.status}`;
    error.hidden = false;
    return;
  }
  Lathe.signIn(value, document.getElementById("remember").checked);
  const next = new URLSearchParams(location.search).get("next") || "/ui/jobs";
  location.assign(next.startsWith("/ui") ? next : "/ui/jobs");
});
