"use strict";
/*
 * officepulse kiosk service worker (scope /kiosk/).
 *
 * - The app shell is precached and served cache-first, so that the tablet starts and reloads
 *   without a network. The cache name carries VERSION: changing it (together with
 *   APP_VERSION in kiosk.js) makes the browser install the new shell and delete the old one.
 * - GET /api/v1/kiosk/config is network-first with the last good answer as the offline
 *   fallback, marked with the header X-Officepulse-Cache so the page does not mistake it for a
 *   working connection. The page deletes this cache when it is paired or revoked.
 * - Everything else, in particular every POST (responses, heartbeat, pairing), goes straight
 *   to the network and is never cached.
 */
const VERSION = "kiosk-3";
const SHELL_CACHE = `officepulse-kiosk-shell-${VERSION}`;
const CONFIG_CACHE = "officepulse-kiosk-config";
const SHELL = ["/kiosk/", "/kiosk/kiosk.js", "/kiosk/kiosk.css"];
const CONFIG_PATH = "/api/v1/kiosk/config";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(SHELL_CACHE)
      // "reload": take the files from the server, not from the browser's HTTP cache.
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(
        names
          .filter((name) => name.startsWith("officepulse-kiosk-") && name !== SHELL_CACHE && name !== CONFIG_CACHE)
          .map((name) => caches.delete(name)),
      ))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === CONFIG_PATH) {
    event.respondWith(networkFirst(request));
    return;
  }
  // The page itself may be opened as /kiosk/ or /kiosk/index.html, with or without a query.
  const path = url.pathname === "/kiosk/index.html" ? "/kiosk/" : url.pathname;
  if (SHELL.includes(path)) event.respondWith(cacheFirst(path, request));
});

async function cacheFirst(path, request) {
  const cache = await caches.open(SHELL_CACHE);
  const cached = await cache.match(path);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok && response.type === "basic") await cache.put(path, response.clone()).catch(() => {});
  return response;
}

async function networkFirst(request) {
  const cache = await caches.open(CONFIG_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(CONFIG_PATH, response.clone()).catch(() => {});
    else if (response.status === 401 || response.status === 403) await cache.delete(CONFIG_PATH);
    return response;
  } catch (error) {
    const cached = await cache.match(CONFIG_PATH, { ignoreVary: true });
    if (!cached) throw error;
    const headers = new Headers(cached.headers);
    headers.set("X-Officepulse-Cache", "fallback");
    return new Response(cached.body, { status: cached.status, statusText: cached.statusText, headers });
  }
}
