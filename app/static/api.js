// Calls to the service's own API: the API key travels only in a header, never in a URL.

let apiKey = "";

export function setApiKey(key) {
  apiKey = key.trim();
}

function headers() {
  return apiKey ? { "X-API-Key": apiKey } : {};
}

// The message of an error answer: this API's {"error": {code, message}}, else the status.
async function errorOf(response) {
  let text = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    const error = body && body.error;
    if (error && typeof error.message === "string") {
      return { status: response.status, code: error.code || "", message: error.message };
    }
    if (typeof error === "string") text = error;
  } catch {
    // not JSON: keep the status line
  }
  return { status: response.status, code: "", message: text };
}

// GET path; resolves to {ok: true, data} (JSON, or a Blob when asBlob) or {ok: false, error}.
export async function get(path, asBlob = false) {
  return send(path, { headers: headers() }, asBlob);
}

// POST one image as multipart (field `file`).
export async function postImage(path, blob, name) {
  const form = new FormData();
  form.append("file", blob, name || "image");
  return send(path, { method: "POST", body: form, headers: headers() }, false);
}

async function send(path, init, asBlob) {
  let response;
  try {
    response = await fetch(path, { ...init, cache: "no-store", credentials: "omit" });
  } catch (exc) {
    return { ok: false, error: { status: 0, code: "network", message: `no answer: ${exc}` } };
  }
  if (!response.ok) return { ok: false, error: await errorOf(response) };
  return { ok: true, data: asBlob ? await response.blob() : await response.json() };
}

export function enc(part) {
  return encodeURIComponent(String(part));
}
