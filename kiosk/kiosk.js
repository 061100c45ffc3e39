"use strict";
/*
 * officepulse kiosk: an unattended, self-resetting survey on a tablet in a job centre's
 * entrance area. Plain JavaScript without dependencies or a build step, because the page runs
 * under a strict Content-Security-Policy (no inline code, no inline styles, nothing from
 * another origin) and must keep working from its service-worker cache while offline.
 *
 * Anonymity: nothing about the client or the device is sent or stored except the answers
 * themselves, the language, the completion time and a random response id. No cookies, no
 * analytics. The device token and the kiosk record (from pairing) live in localStorage; the
 * configuration and the queue of unsent responses live in IndexedDB; all survive restarts.
 *
 * Screens: pair -> start (first question) -> question ... -> comment -> thanks -> start.
 * Exactly one <section id="screen-..."> is visible; the "Still there?" prompt is a modal
 * <dialog> above them.
 */
(() => {
  const APP_VERSION = "kiosk-3"; // keep in step with VERSION in sw.js (a new shell needs both)
  const API = "/api/v1/kiosk";
  const PAIRING_KEY = "officepulse-kiosk-pairing"; // localStorage: {token, kiosk}
  const DB_NAME = "officepulse-kiosk";
  const CONFIG_CACHE = "officepulse-kiosk-config"; // the service worker's config cache (sw.js)
  const SW_URL = "/kiosk/sw.js";
  const SW_SCOPE = "/kiosk/";
  const BATCH_MAX = 100; // the server refuses larger batches with 413
  const BACKOFF_MAX_MS = 5 * 60 * 1000;
  const REQUEST_TIMEOUT_MS = 20 * 1000;
  const TAP_GUARD_MS = 450;
  const PHONE_RETRY_MS = 30 * 1000;
  const CONFIG_RETRY_MS = 15 * 1000;
  const UPDATE_CHECK_MS = 60 * 60 * 1000;
  const DONE = new Set(["created", "duplicate", "rejected"]);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const SCREENS = ["loading", "pair", "start", "question", "comment", "thanks"];
  const DEFAULT_TIMINGS = {
    idle_seconds: 30,
    prompt_seconds: 20,
    thanks_seconds: 5,
    heartbeat_seconds: 60,
    phone_qr_seconds: 300,
  };
  // A tablet that has never been paired has no configuration and hence no interface texts:
  // staff pair it, so German is enough. pair_offline and pair_failed exist only here.
  const BUILTIN_UI = {
    pair_title: "Dieses Tablet koppeln",
    pair_label: "Kopplungscode",
    pair_button: "Koppeln",
    pair_wrong: "Dieser Code ist nicht gültig. Bitte prüfen Sie ihn oder erzeugen Sie einen neuen.",
    pair_throttled: "Zu viele falsche Codes. Bitte warten Sie einige Minuten.",
    not_paired: "Dieses Tablet ist nicht (mehr) gekoppelt.",
    pair_offline: "Der Server ist nicht erreichbar. Bitte prüfen Sie die Netzwerkverbindung.",
    pair_failed: "Unerwartete Antwort des Servers. Bitte versuchen Sie es noch einmal.",
  };

  const $ = (id) => document.getElementById(id);

  const app = {
    token: null,
    kiosk: null, // {id, name, office, office_name, placement, synthetic} from pairing
    config: null,
    pendingConfig: null, // a newer config that waits until no one is mid-survey
    configEtag: "", // the server's ETag of the newest config held (pendingConfig or config)
    screen: "loading",
    lang: "de",
    session: newSession(),
    lastActivity: Date.now(),
    shownAt: 0,
    prompt: null, // {started, announced} while "Still there?" is open
    offline: !navigator.onLine,
    queueCount: 0,
    backoff: 0,
    retryTimer: 0,
    sending: null,
    sendAgain: false,
    heartbeatTimer: 0,
    phoneTimer: 0,
    thanksTimer: 0,
    configTimer: 0,
    swControlled: false,
    reloadPending: false,
    pairAttempt: null, // {code, attempt}: the same attempt id while the same code is retried
  };

  function newSession() {
    return { step: 0, answers: {}, comment: "" };
  }

  // -- storage ----------------------------------------------------------------------------

  // IndexedDB with two stores: "queue" (unsent responses, keyed by their id) and "meta" (the
  // config under "config"). If IndexedDB cannot be opened at all (a locked-down
  // browser profile), the kiosk still works with an in-memory stand-in that a reload loses.
  const store = (() => {
    let opening = null;
    const memory = { queue: new Map(), meta: new Map() };

    function open() {
      opening ??= new Promise((resolve) => {
        let request;
        try {
          request = indexedDB.open(DB_NAME, 1);
        } catch (error) {
          console.warn("officepulse: IndexedDB unavailable, keeping the queue in memory", error);
          resolve(null);
          return;
        }
        request.onupgradeneeded = () => {
          const db = request.result;
          if (!db.objectStoreNames.contains("queue")) db.createObjectStore("queue", { keyPath: "id" });
          if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
        };
        request.onsuccess = () => {
          const db = request.result;
          // Let a future version of the app upgrade the database instead of blocking it.
          db.onversionchange = () => {
            db.close();
            opening = null;
          };
          resolve(db);
        };
        request.onerror = () => {
          console.warn("officepulse: IndexedDB unavailable, keeping the queue in memory", request.error);
          resolve(null);
        };
      });
      return opening;
    }

    function transaction(db, name, mode, work) {
      return new Promise((resolve, reject) => {
        // "strict": a queued response must be on disk before we tell the client "thank you".
        const tx = db.transaction(name, mode, { durability: mode === "readwrite" ? "strict" : "default" });
        const request = work(tx.objectStore(name));
        tx.oncomplete = () => resolve(request ? request.result : undefined);
        tx.onerror = tx.onabort = () => reject(tx.error || new Error("IndexedDB transaction failed"));
      });
    }

    return {
      async get(name, key) {
        const db = await open();
        return db ? transaction(db, name, "readonly", (s) => s.get(key)) : memory[name].get(key);
      },
      async put(name, value, key) {
        const db = await open();
        if (db) return transaction(db, name, "readwrite", (s) => (key === undefined ? s.put(value) : s.put(value, key)));
        memory[name].set(key === undefined ? value.id : key, value);
        return undefined;
      },
      async all(name) {
        const db = await open();
        return db ? transaction(db, name, "readonly", (s) => s.getAll()) : [...memory[name].values()];
      },
      async remove(name, keys) {
        const db = await open();
        if (db) {
          return transaction(db, name, "readwrite", (s) => {
            for (const key of keys) s.delete(key);
          });
        }
        for (const key of keys) memory[name].delete(key);
        return undefined;
      },
    };
  })();

  // The token and the kiosk record are stored together, so that the kiosk id (which the queue
  // is filed under) is known whenever there is a token. Unpairing keeps the kiosk record.
  function readPairing() {
    try {
      const saved = JSON.parse(localStorage.getItem(PAIRING_KEY) || "null");
      if (saved && typeof saved === "object") {
        app.token = nonEmpty(saved.token);
        app.kiosk = saved.kiosk && typeof saved.kiosk === "object" ? saved.kiosk : null;
      }
    } catch (error) {
      console.warn("officepulse: cannot read the pairing", error);
    }
  }

  function savePairing(token, kiosk) {
    app.token = token;
    app.kiosk = kiosk;
    try {
      localStorage.setItem(PAIRING_KEY, JSON.stringify({ token, kiosk }));
    } catch (error) {
      console.warn("officepulse: cannot store the pairing", error);
    }
  }

  // A config cached by the service worker belongs to the token that fetched it; after pairing
  // (possibly as another kiosk) or revocation it must not come back as an offline fallback.
  async function forgetCachedConfig() {
    try {
      if ("caches" in window) await caches.delete(CONFIG_CACHE);
    } catch {
      // nothing cached, or no Cache API in this context
    }
  }

  // -- texts and configuration ------------------------------------------------------------

  function nonEmpty(value) {
    return typeof value === "string" && value.trim() !== "" ? value : null;
  }

  // Interface string: the chosen language, then German, then the built-in text, then the key.
  function t(key) {
    const ui = (app.config && app.config.ui) || {};
    return nonEmpty(ui[app.lang]?.[key]) ?? nonEmpty(ui.de?.[key]) ?? BUILTIN_UI[key] ?? key;
  }

  // Survey text in the chosen language or the survey's fallback; returns [value, lang] so that
  // a German fallback can carry lang="de" for screen readers.
  function localized(map, isValid = nonEmpty) {
    if (map && typeof map === "object") {
      for (const tag of [app.lang, defaultLang(), "de"]) {
        if (isValid(map[tag])) return [map[tag], tag];
      }
    }
    return [null, app.lang];
  }

  const fiveLabels = (value) => Array.isArray(value) && value.length === 5;

  function setText(element, [value, lang], fallback = "") {
    element.textContent = value ?? fallback;
    if (lang !== app.lang) element.lang = lang;
    else element.removeAttribute("lang");
  }

  function formatNumber(n) {
    try {
      return new Intl.NumberFormat([app.lang, "de"]).format(n);
    } catch {
      return String(n);
    }
  }

  // "17 Sekunden", "١٧ ثانية": a localized unit instead of yet another interface string.
  function formatSeconds(n) {
    try {
      return new Intl.NumberFormat([app.lang, "de"], { style: "unit", unit: "second", unitDisplay: "long" }).format(n);
    } catch {
      return `${n} s`;
    }
  }

  function timing(name) {
    const value = Number(app.config?.timings?.[name]);
    return value > 0 ? value : DEFAULT_TIMINGS[name];
  }

  function languages() {
    const list = app.config?.languages;
    return Array.isArray(list) ? list.filter((l) => l && nonEmpty(l.tag)) : [];
  }

  function defaultLang() {
    const tags = languages().map((l) => l.tag);
    const wanted = app.config?.default_lang;
    return tags.includes(wanted) ? wanted : tags[0] || "de";
  }

  function itemById(id) {
    return (app.config?.survey?.items || []).find((item) => item && item.id === id) || null;
  }

  function flowItems() {
    return (app.config?.flow || []).map(itemById).filter((item) => item && item.kind === "rating");
  }

  function commentItem() {
    const item = itemById(app.config?.comment_item);
    return item && item.kind === "text" ? item : null;
  }

  // Just enough checking that a broken config cannot leave the tablet without a first question.
  function validConfig(config) {
    if (!config || typeof config !== "object" || !config.survey || !Array.isArray(config.survey.items)) return false;
    if (!nonEmpty(config.survey.id) || !Array.isArray(config.flow) || config.flow.length === 0) return false;
    return config.survey.items.some((item) => item && item.id === config.flow[0] && item.kind === "rating");
  }

  function steps() {
    const list = flowItems().map((item) => ({ kind: "rating", item }));
    const comment = commentItem();
    if (comment) list.push({ kind: "comment", item: comment });
    return list;
  }

  // -- rendering --------------------------------------------------------------------------

  // Everything that changes with the config rather than with the language or the step.
  function buildForConfig() {
    const buttons = languages().map(({ tag, name, direction }) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "lang";
      button.dataset.lang = tag;
      button.lang = tag;
      button.dir = direction === "rtl" ? "rtl" : "ltr";
      button.textContent = nonEmpty(name) || tag;
      return button;
    });
    $("langs").replaceChildren(...buttons);
    $("langs").closest(".langs-box").hidden = buttons.length < 2;
    $("office-name").textContent = nonEmpty(app.kiosk?.office_name) || "";
    $("demo-label").hidden = !(app.config?.synthetic || app.kiosk?.synthetic);
    if (!languages().some((l) => l.tag === app.lang)) app.lang = defaultLang();
  }

  function applyLanguage() {
    const entry = languages().find((l) => l.tag === app.lang);
    document.documentElement.lang = app.lang;
    document.documentElement.dir = entry?.direction === "rtl" ? "rtl" : "ltr";
    for (const element of document.querySelectorAll("[data-ui]")) element.textContent = t(element.dataset.ui);
    for (const button of $("langs").children) {
      button.setAttribute("aria-pressed", String(button.dataset.lang === app.lang));
    }
    $("phone-img").alt = t("phone_hint");
    renderStatus();
  }

  // The face shows how the client feels: for "lower_is_better" (stress) value 1 is calm.
  function mood(item, value) {
    return item.polarity === "lower_is_better" ? 6 - value : value;
  }

  function renderFaces(container, item) {
    const [labels, labelLang] = localized(item.labels, fiveLabels);
    const chosen = app.session.answers[item.id];
    const buttons = [];
    for (let value = 1; value <= 5; value += 1) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "face";
      button.dataset.value = String(value);
      button.setAttribute("aria-pressed", String(chosen === value));
      const svg = document.createElementNS(SVG_NS, "svg");
      svg.setAttribute("viewBox", "0 0 40 40");
      svg.setAttribute("aria-hidden", "true");
      svg.setAttribute("focusable", "false");
      const use = document.createElementNS(SVG_NS, "use");
      use.setAttribute("href", `#mood-${mood(item, value)}`);
      svg.append(use);
      const label = document.createElement("span");
      label.className = "face-label";
      setText(label, [labels ? String(labels[value - 1]) : null, labelLang], formatNumber(value));
      button.append(svg, label);
      buttons.push(button);
    }
    container.dataset.item = item.id;
    container.replaceChildren(...buttons);
  }

  function renderStart() {
    const first = flowItems()[0];
    if (!first) return;
    setText($("start-title"), localized(first.text), first.id);
    renderFaces($("start-faces"), first);
  }

  function renderProgress(element, index, total) {
    element.textContent = `${formatNumber(index + 1)} / ${formatNumber(total)}`;
  }

  function renderQuestion(item, index, total) {
    setText($("question-title"), localized(item.text), item.id);
    renderFaces($("question-faces"), item);
    renderProgress($("question-progress"), index, total);
  }

  function renderComment(item, index, total) {
    setText($("comment-label"), localized(item.text), item.id);
    setText($("comment-hint"), localized(item.hint));
    $("comment-hint").hidden = !$("comment-hint").textContent;
    const max = Number(item.max_length);
    if (max > 0) $("comment-text").maxLength = max;
    else $("comment-text").removeAttribute("maxlength");
    renderProgress($("comment-progress"), index, total);
    renderCount();
  }

  function renderCount() {
    const textarea = $("comment-text");
    const max = textarea.maxLength;
    $("comment-count").textContent = max > 0 ? `${formatNumber(textarea.value.length)} / ${formatNumber(max)}` : "";
  }

  // Staff indicator: a small grey dot (hollow when offline) with "Offline" and the number of
  // unsent responses in small print; the full wording is in a visually hidden label.
  function renderStatus() {
    const element = $("status-indicator");
    const n = app.queueCount;
    element.dataset.queue = String(n);
    element.classList.toggle("offline", app.offline);
    const offline = app.offline ? t("offline") : "";
    const queued = t("queued");
    const queuedText = /\{(count|n)\}/.test(queued) ? queued.replace(/\{(count|n)\}/g, formatNumber(n)) : `${formatNumber(n)} ${queued}`;
    $("status-short").textContent = [offline, n > 0 ? formatNumber(n) : ""].filter(Boolean).join(" · ");
    $("status-label").textContent = [offline, queuedText].filter(Boolean).join(". ");
  }

  function announce(message) {
    const live = $("announcer");
    // Emptying first makes screen readers speak a text even when it equals the previous one.
    live.textContent = "";
    setTimeout(() => {
      live.textContent = message;
    }, 60);
  }

  function show(name) {
    for (const screen of SCREENS) $(`screen-${screen}`).hidden = screen !== name;
    app.screen = name;
    app.shownAt = performance.now();
    window.scrollTo(0, 0);
    const heading = $(`screen-${name}`).querySelector("h1");
    // The question screen is reused: blur first so that focusing the same heading counts.
    if (document.activeElement === heading) heading.blur();
    heading.focus({ preventScroll: true });
    announce(heading.textContent);
  }

  // -- the survey flow ----------------------------------------------------------------------

  // A quick double tap must not answer the next question too: touch taps right after a screen
  // change are ignored (mouse clicks and keys are not, so automated tests need not wait).
  function tooSoon(event) {
    const touch = event.pointerType === "touch" || event.pointerType === "pen";
    return touch && performance.now() - app.shownAt < TAP_GUARD_MS;
  }

  function goStep(index) {
    const list = steps();
    app.session.step = Math.max(0, index);
    if (index <= 0) {
      renderStart();
      show("start");
    } else if (index >= list.length) {
      finish();
    } else if (list[index].kind === "comment") {
      renderComment(list[index].item, index, list.length);
      show("comment");
    } else {
      renderQuestion(list[index].item, index, list.length);
      show("question");
    }
  }

  function onFace(event) {
    const button = event.target.closest(".face");
    if (!button || tooSoon(event)) return;
    app.session.answers[event.currentTarget.dataset.item] = Number(button.dataset.value);
    goStep(app.session.step + 1);
  }

  function setLanguage(tag) {
    if (tag === app.lang || !languages().some((l) => l.tag === tag)) return;
    app.lang = tag;
    applyLanguage();
    renderStart();
    announce($("start-title").textContent);
  }

  function buildResponse(partial, comment) {
    const response = {
      id: uuid(),
      survey: app.config.survey.id,
      version: app.config.survey.version,
      lang: app.lang,
      answers: { ...app.session.answers },
      completed_at: new Date().toISOString(),
      partial,
    };
    if (comment) response.comment = comment;
    return response;
  }

  function finish() {
    const saving = enqueue(buildResponse(false, app.session.comment));
    // Forget the answers at once: the thank-you screen shows nothing of them.
    app.session = newSession();
    $("comment-text").value = "";
    show("thanks");
    clearTimeout(app.thanksTimer);
    app.thanksTimer = setTimeout(() => saving.finally(() => resetToStart(false)), timing("thanks_seconds") * 1000);
  }

  // A fresh survey for the next person. With queuePartial, what the previous person answered
  // is kept as a partial response, but only if they answered at least the first question (an
  // unsent comment is dropped: they never pressed "Send").
  function resetToStart(queuePartial) {
    clearTimeout(app.thanksTimer);
    closePrompt();
    if (!app.token) return; // revoked meanwhile: the pairing screen stays
    let saving = Promise.resolve();
    const first = flowItems()[0];
    if (queuePartial && first && app.session.answers[first.id] !== undefined) {
      saving = enqueue(buildResponse(true, ""));
    }
    app.session = newSession();
    $("comment-text").value = "";
    if (app.pendingConfig) {
      app.config = app.pendingConfig;
      app.pendingConfig = null;
      buildForConfig();
    }
    app.lang = defaultLang();
    app.lastActivity = Date.now();
    if (app.reloadPending) {
      // A new app version is installed; load it now that nobody is in the middle of a survey.
      saving.finally(() => location.reload());
      return;
    }
    applyLanguage();
    renderStart();
    show("start");
  }

  function inSurvey() {
    return app.screen === "question" || app.screen === "comment" ||
      (app.screen === "start" && Object.keys(app.session.answers).length > 0);
  }

  // -- idle handling ------------------------------------------------------------------------

  // One clock for all idle logic: robust against drifting timers and a tablet waking from
  // sleep (then the prompt simply appears at once).
  function tick() {
    const now = Date.now();
    if (app.prompt) {
      countdown(now);
      return;
    }
    if (now - app.lastActivity < timing("idle_seconds") * 1000) return;
    if (inSurvey()) {
      openPrompt(now);
    } else if (app.reloadPending && ["pair", "loading", "start"].includes(app.screen)) {
      location.reload();
    } else if (app.screen === "start" && app.lang !== defaultLang()) {
      app.lang = defaultLang();
      applyLanguage();
      renderStart();
    }
  }

  function openPrompt(now) {
    app.prompt = { started: now, announced: timing("prompt_seconds") };
    countdown(now);
    const dialog = $("prompt-still-there");
    if (!dialog.open) dialog.showModal();
    $("prompt-continue").focus();
  }

  function countdown(now) {
    const left = Math.ceil(timing("prompt_seconds") - (now - app.prompt.started) / 1000);
    if (left <= 0) {
      resetToStart(true);
      return;
    }
    $("prompt-count").textContent = formatSeconds(left);
    // Announce every 10 seconds and at 5 only: the dialog itself reads the full time when it
    // opens, and a voice counting every second would drown the button.
    if (left !== app.prompt.announced && (left % 10 === 0 || left === 5)) {
      app.prompt.announced = left;
      $("prompt-live").textContent = formatSeconds(left);
    }
  }

  function closePrompt() {
    app.prompt = null;
    $("prompt-live").textContent = "";
    const dialog = $("prompt-still-there");
    if (dialog.open) dialog.close();
  }

  function continueSurvey() {
    closePrompt();
    app.lastActivity = Date.now();
  }

  // -- network ----------------------------------------------------------------------------

  class Unpaired extends Error {}

  // Pairing: tries per press of the button (waiting 1 s, 2 s between them), and the attempt id.
  const PAIR_TRIES = 3;

  function pairAttemptId() {
    const bytes = crypto.getRandomValues(new Uint8Array(18));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function timeoutSignal() {
    return typeof AbortSignal.timeout === "function" ? AbortSignal.timeout(REQUEST_TIMEOUT_MS) : undefined;
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  // Every authenticated call goes through here: a 401 means the kiosk was revoked.
  async function api(method, path, body, extraHeaders) {
    const token = app.token;
    if (!token) throw new Unpaired("not paired");
    const headers = { ...extraHeaders, Accept: "application/json", Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
        signal: timeoutSignal(),
      });
    } catch (error) {
      setOffline(true);
      throw error;
    }
    if (response.status === 401) {
      if (app.token === token) unpair();
      throw new Unpaired("token refused");
    }
    // A config answered from the service worker's cache says nothing about the connection.
    if (!response.headers.has("X-Officepulse-Cache")) setOffline(response.status >= 500);
    return response;
  }

  function setOffline(value) {
    if (app.offline === value) return;
    app.offline = value;
    renderStatus();
  }

  async function submitPairing(event) {
    event.preventDefault();
    const input = $("pair-code");
    const button = event.currentTarget.querySelector("button");
    const code = input.value.replace(/\s+/g, "").toUpperCase();
    if (!code) {
      input.focus();
      return;
    }
    button.disabled = true;
    setPairError("");
    // One attempt id per code: if an answer is lost, the same code with the same attempt id
    // gets a fresh token (for a few minutes) instead of "code already used".
    if (!app.pairAttempt || app.pairAttempt.code !== code) {
      app.pairAttempt = { code, attempt: pairAttemptId() };
    }
    const request = JSON.stringify({ code, attempt: app.pairAttempt.attempt });
    try {
      let response = null;
      for (let tries = 0; tries < PAIR_TRIES; tries += 1) {
        if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** (tries - 1)));
        try {
          response = await fetch(`${API}/pair`, {
            method: "POST",
            headers: { Accept: "application/json", "Content-Type": "application/json" },
            body: request,
            cache: "no-store",
            credentials: "omit",
            referrerPolicy: "no-referrer",
            signal: timeoutSignal(),
          });
        } catch {
          response = null; // no answer (dropped, cut, timed out): ask again
          continue;
        }
        if (response.status < 500) break;
      }
      if (response === null) {
        setPairError(t("pair_offline"));
        return;
      }
      const body = await readJson(response);
      if (response.ok) {
        if (!body || !nonEmpty(body.token) || !validConfig(body.config)) {
          setPairError(t("pair_failed"));
          return;
        }
        await forgetCachedConfig();
        app.config = body.config;
        app.pendingConfig = null;
        app.configEtag = ""; // the pairing answer has none: the next fetch gets the whole config
        await store.put("meta", "", "config-etag").catch(() => {});
        // The config first, then the token: a stored token then (nearly) always has its config.
        await store.put("meta", app.config, "config").catch((error) => {
          console.warn("officepulse: cannot store the configuration", error);
        });
        savePairing(body.token, body.kiosk && typeof body.kiosk === "object" ? body.kiosk : null);
        app.pairAttempt = null;
        input.value = "";
        startPaired();
        return;
      }
      if (response.status === 429) setPairError(t("pair_throttled"));
      else if (response.status === 403) setPairError(t("pair_wrong"));
      else setPairError(nonEmpty(body?.detail) || t("pair_wrong"));
    } finally {
      button.disabled = false;
    }
  }

  function setPairError(message) {
    $("pair-error").textContent = message;
    $("pair-code").setAttribute("aria-invalid", String(Boolean(message)));
  }

  function showPair() {
    app.lang = app.config ? defaultLang() : "de";
    applyLanguage();
    setPairError("");
    show("pair");
  }

  function startPaired() {
    buildForConfig();
    resetToStart(false);
    heartbeat();
    refreshPhoneCode();
    flush();
  }

  // Revoked (any 401): forget the token and show the pairing screen. Queued responses stay in
  // IndexedDB: if this kiosk is paired again they are sent then (their ids make that safe).
  function unpair() {
    if (!app.token) return;
    const first = flowItems()[0];
    if (app.config && first && app.session.answers[first.id] !== undefined) enqueue(buildResponse(true, ""));
    savePairing(null, app.kiosk);
    for (const timer of ["heartbeatTimer", "phoneTimer", "retryTimer", "thanksTimer", "configTimer"]) {
      clearTimeout(app[timer]);
      app[timer] = 0;
    }
    closePrompt();
    hidePhone();
    forgetCachedConfig();
    app.session = newSession();
    $("comment-text").value = "";
    showPair();
  }

  async function heartbeat() {
    clearTimeout(app.heartbeatTimer);
    if (!app.token) return;
    try {
      const queued = await queueLength();
      const response = await api("POST", "/heartbeat", { app_version: APP_VERSION, queue_length: queued });
      // The server answered, so a send waiting out its back-off can go now.
      if (response.status < 500 && queued > 0) flush();
    } catch (error) {
      if (error instanceof Unpaired) return;
    }
    await refreshConfig();
    if (app.token) app.heartbeatTimer = setTimeout(heartbeat, timing("heartbeat_seconds") * 1000);
  }

  // Fetches the config; keeps the old one on any failure. A changed config is applied at once
  // only when nobody is mid-survey (a response must match the survey version it was answered in).
  // The ETag of the config held (the pending one if any) makes an unchanged config an empty 304.
  async function refreshConfig() {
    let config;
    let etag = "";
    const held = app.pendingConfig || app.config;
    try {
      const conditional = held && app.configEtag ? { "If-None-Match": app.configEtag } : undefined;
      const response = await api("GET", "/config", undefined, conditional);
      if (response.status === 304 && held) return true;
      config = response.ok ? await readJson(response) : null;
      etag = response.headers.get("ETag") || "";
    } catch {
      return false;
    }
    if (!validConfig(config)) return false;
    const same = JSON.stringify(config) === JSON.stringify(held);
    // The config is stored before its tag: a tag must never stand for a config not kept.
    if (!same) await store.put("meta", config, "config").catch(() => {});
    if (etag !== app.configEtag) {
      app.configEtag = etag;
      await store.put("meta", etag, "config-etag").catch(() => {});
    }
    if (same) return true;
    if (!app.config || (app.screen === "start" && !inSurvey() && !app.prompt)) {
      app.config = config;
      app.pendingConfig = null;
      buildForConfig();
      applyLanguage();
      renderStart();
    } else {
      app.pendingConfig = config;
    }
    return true;
  }

  // A token without a stored config (storage cleared): wait on the loading screen.
  async function waitForConfig() {
    if (!app.token) return;
    if ((await refreshConfig()) && app.config) startPaired();
    else if (app.token) app.configTimer = setTimeout(waitForConfig, CONFIG_RETRY_MS);
  }

  function base64Utf8(textValue) {
    const bytes = new TextEncoder().encode(textValue);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  function hidePhone() {
    $("phone").hidden = true;
    $("phone-img").removeAttribute("src");
  }

  // The own-phone QR code rotates on the server in fixed windows; fetch the next one just
  // after the current window ends. Without a code (offline) the box is hidden, not broken.
  async function refreshPhoneCode() {
    clearTimeout(app.phoneTimer);
    if (!app.token) return;
    let wait = timing("phone_qr_seconds") * 1000;
    try {
      const response = await api("GET", "/phone-code");
      const body = response.ok ? await readJson(response) : null;
      if (!body || !nonEmpty(body.svg) || !/<svg[\s>]/.test(body.svg)) throw new Error(`phone code: HTTP ${response.status}`);
      $("phone-img").src = `data:image/svg+xml;base64,${base64Utf8(body.svg)}`;
      $("phone").hidden = false;
      const expires = Number(body.expires_in);
      if (expires > 0) wait = Math.min(wait, expires * 1000 + 1000);
    } catch (error) {
      if (error instanceof Unpaired) return;
      hidePhone();
      wait = Math.min(wait, PHONE_RETRY_MS);
    }
    app.phoneTimer = setTimeout(refreshPhoneCode, Math.max(wait, 5000));
  }

  // -- the response queue -------------------------------------------------------------------

  function uuid() {
    if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
    // randomUUID needs a secure context; getRandomValues does not.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // Each queue entry remembers the kiosk it was answered on: the server files a response under
  // the office of the token that sends it, so a tablet re-paired to another office must not
  // send the old office's answers (they stay stored, unsent).
  async function pendingEntries() {
    const mine = app.kiosk?.id ?? null;
    const entries = (await store.all("queue")).filter((entry) => entry && entry.response && entry.kiosk === mine);
    return entries.sort((a, b) => String(a.response.completed_at).localeCompare(String(b.response.completed_at)));
  }

  async function queueLength() {
    try {
      return (await pendingEntries()).length;
    } catch {
      return app.queueCount;
    }
  }

  async function refreshQueueCount() {
    app.queueCount = await queueLength();
    renderStatus();
  }

  async function enqueue(response) {
    try {
      await store.put("queue", { id: response.id, kiosk: app.kiosk?.id ?? null, response });
    } catch (error) {
      console.error("officepulse: could not queue a response", error);
      return;
    }
    await refreshQueueCount();
    flush();
  }

  function scheduleRetry() {
    clearTimeout(app.retryTimer);
    const delay = Math.min(1000 * 2 ** app.backoff, BACKOFF_MAX_MS);
    app.backoff = Math.min(app.backoff + 1, 30);
    app.retryTimer = setTimeout(() => {
      app.retryTimer = 0;
      flush();
    }, delay);
  }

  async function sendQueue() {
    let size = BATCH_MAX;
    while (app.token) {
      const entries = await pendingEntries();
      app.queueCount = entries.length;
      renderStatus();
      if (entries.length === 0) {
        app.backoff = 0;
        return;
      }
      const batch = entries.slice(0, size).map((entry) => entry.response);
      let response;
      try {
        response = await api("POST", "/responses", { responses: batch });
      } catch (error) {
        if (!(error instanceof Unpaired)) scheduleRetry();
        return;
      }
      if (response.status === 413 && size > 1) {
        size = Math.ceil(size / 2);
        continue;
      }
      // Anything but a list of results (5xx, a malformed batch, a proxy's error page) keeps
      // the responses and tries again later: only the server's word removes them.
      const results = response.ok ? (await readJson(response))?.results : null;
      if (!Array.isArray(results)) {
        scheduleRetry();
        return;
      }
      const sent = new Set(batch.map((r) => r.id));
      const done = [];
      for (const result of results) {
        if (!result || !sent.has(result.id) || !DONE.has(result.status)) continue;
        done.push(result.id);
        if (result.status === "rejected") console.warn("officepulse: response rejected", result.id, result.errors);
      }
      if (done.length === 0) {
        scheduleRetry();
        return;
      }
      await store.remove("queue", done);
      app.backoff = 0;
    }
  }

  // One sender at a time; a call while it runs makes it look at the queue once more.
  function flush() {
    clearTimeout(app.retryTimer);
    app.retryTimer = 0;
    if (app.sending) {
      app.sendAgain = true;
      return app.sending;
    }
    app.sending = (async () => {
      do {
        app.sendAgain = false;
        try {
          await sendQueue();
        } catch (error) {
          console.warn("officepulse: sending failed", error);
          scheduleRetry();
        }
      } while (app.sendAgain && !app.retryTimer && app.token);
      await refreshQueueCount().catch(() => {});
    })().finally(() => {
      app.sending = null;
    });
    return app.sending;
  }

  // -- service worker -----------------------------------------------------------------------

  function registerServiceWorker() {
    if (!("serviceWorker" in navigator)) return;
    app.swControlled = Boolean(navigator.serviceWorker.controller);
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      // The very first installation also takes control; only a replacement is an update,
      // and it is loaded when nobody is using the tablet (see tick and resetToStart).
      if (app.swControlled) app.reloadPending = true;
      app.swControlled = true;
    });
    navigator.serviceWorker.register(SW_URL, { scope: SW_SCOPE }).then((registration) => {
      // An unattended tablet never navigates, so look for a new version now and then.
      setInterval(() => registration.update().catch(() => {}), UPDATE_CHECK_MS);
    }).catch((error) => console.warn("officepulse: no service worker", error));
  }

  // -- wiring -------------------------------------------------------------------------------

  function guarded(action) {
    return (event) => {
      if (!tooSoon(event)) action();
    };
  }

  function wire() {
    $("pair-form").addEventListener("submit", submitPairing);
    $("start-faces").addEventListener("click", onFace);
    $("question-faces").addEventListener("click", onFace);
    $("langs").addEventListener("click", (event) => {
      const button = event.target.closest(".lang");
      if (button) setLanguage(button.dataset.lang);
    });
    for (const button of document.querySelectorAll("[data-action=back]")) {
      button.addEventListener("click", guarded(() => goStep(app.session.step - 1)));
    }
    $("comment-send").addEventListener("click", guarded(() => {
      app.session.comment = $("comment-text").value.trim();
      goStep(app.session.step + 1);
    }));
    $("comment-skip").addEventListener("click", guarded(() => {
      app.session.comment = "";
      goStep(app.session.step + 1);
    }));
    $("comment-text").addEventListener("input", renderCount);
    $("prompt-continue").addEventListener("click", continueSurvey);
    // Escape (or a tablet's back gesture) on the prompt means "I am still here".
    $("prompt-still-there").addEventListener("cancel", (event) => {
      event.preventDefault();
      continueSurvey();
    });
    $("phone-img").addEventListener("error", hidePhone);

    // Any touch or key counts as activity, except while the prompt asks: then only its button.
    const active = () => {
      if (!app.prompt) app.lastActivity = Date.now();
    };
    for (const type of ["pointerdown", "keydown", "input", "wheel"]) {
      document.addEventListener(type, active, { capture: true, passive: true });
    }
    window.addEventListener("online", () => {
      app.backoff = 0;
      flush();
      if (app.token && $("phone").hidden) refreshPhoneCode();
    });
    window.addEventListener("offline", () => setOffline(true));
    // No "save image" or selection menus from a long press, except in the text fields.
    document.addEventListener("contextmenu", (event) => {
      if (!(event.target instanceof Element) || !event.target.closest("input, textarea")) event.preventDefault();
    });
    document.addEventListener("dragstart", (event) => event.preventDefault());
  }

  async function boot() {
    wire();
    registerServiceWorker();
    // Ask the browser not to evict the queue under storage pressure (granted or not, harmless).
    navigator.storage?.persist?.().catch(() => {});
    readPairing();
    try {
      const saved = await store.get("meta", "config");
      if (validConfig(saved)) {
        app.config = saved;
        const etag = await store.get("meta", "config-etag");
        app.configEtag = typeof etag === "string" ? etag : "";
      }
    } catch (error) {
      console.warn("officepulse: cannot read the stored configuration", error);
    }
    if (app.config) buildForConfig();
    app.lang = app.config ? defaultLang() : "de";
    applyLanguage();
    await refreshQueueCount().catch(() => {});
    setInterval(tick, 1000);
    if (!app.token) showPair();
    else if (app.config) startPaired();
    else {
      show("loading");
      waitForConfig();
    }
  }

  // Hooks for the browser tests: wait for the queue to drain, know which screen is up.
  window.officepulseKiosk = Object.freeze({
    queueLength: () => queueLength(),
    flush: () => flush().then(() => undefined),
    state: () => (app.prompt ? "still-there" : app.screen),
    version: APP_VERSION,
  });

  boot();
})();
