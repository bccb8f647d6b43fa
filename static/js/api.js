// The JSON API from the browser: same-origin session cookie, XSRF header on changes,
// and errors as ApiError carrying the API's own readable `message`.
import { t } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, message, reason) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

function xsrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET" && method !== "HEAD") headers["X-XSRFToken"] = xsrfToken();
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, t("Network error: {error}", { error: error.message }), "network");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = (data && typeof data.message === "string" && data.message)
      || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, data && data.reason);
  }
  if (response.redirected && !data) {
    throw new ApiError(401, t("sign in first"), "unauthenticated");
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);
