"use strict";
// The coral serve dashboard: plain JS, no dependencies, works offline.
const state = { selected: null, selectedStatus: null, pc: null };

// The preview's label: the connection's state while the pipeline runs; once it ended (or
// stopped, failed) the video shows its last frame, and the label says so.
function showPreviewState() {
  const label = document.getElementById("preview-state");
  const connection = state.pc ? state.pc.connectionState : "not connected";
  label.textContent = !state.selectedStatus || state.selectedStatus === "running"
    ? connection
    : `pipeline ${state.selectedStatus}` + (connection === "connected" ? ": its last frame" : "");
}

// With a token, the login page set an HttpOnly session cookie the browser sends by itself;
// without one (or when it expired), go and log in.
async function api(path, options = {}) {
  const headers = Object.assign({ "Content-Type": "application/json" }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers, credentials: "same-origin" }));
  if (response.status === 401) window.location.assign("/login");
  return response;
}

async function json(path, options) {
  const response = await api(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// A p50/p95 pair's p50 as a table cell's text ("" before the first frame).
function p50(quantiles) {
  return quantiles.p50 === null ? "" : quantiles.p50 + " ms";
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

async function refreshPipelines() {
  const body = await json("/coral/pipelines");
  const tbody = document.querySelector("#pipelines tbody");
  tbody.replaceChildren();
  for (const p of body.pipelines) {
    const row = tbody.insertRow();
    row.dataset.pipelineId = p.pipeline_id;
    if (p.pipeline_id === state.selected) {
      row.className = "selected";
      state.selectedStatus = p.status;
      showPreviewState();
    }
    cell(row, p.name);
    cell(row, p.model);
    cell(row, p.source);
    cell(row, p.status + (p.error ? ": " + p.error : ""), "status-" + p.status);
    cell(row, p.frames);
    cell(row, p.fps);
    cell(row, p50(p.latency_ms));
    cell(row, p50(p.end_to_end_ms));
    cell(row, p.detections);
    cell(row, p.recording.dropped);
    cell(row, p.metrics.dropped);
    const remove = document.createElement("button");
    remove.textContent = "remove";
    remove.onclick = async (event) => {
      event.stopPropagation();
      await json("/coral/pipelines/" + p.pipeline_id, { method: "DELETE" });
      if (state.selected === p.pipeline_id) select(null);
      refreshPipelines();
    };
    row.insertCell().append(remove);
    row.onclick = () => select(p.pipeline_id, p.name);
  }
  const failures = body.restore_failures.map((f) => `${f.name}: ${f.reason}`);
  document.getElementById("restore-failures").textContent =
    failures.length ? "not restored: " + failures.join("; ") : "";
  document.getElementById("status").textContent = `${body.pipelines.length} pipeline(s)`;
  if (!state.selected && body.pipelines.length) {
    select(body.pipelines[0].pipeline_id, body.pipelines[0].name);
  }
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => pc.addEventListener("icegatheringstatechange", () => {
    if (pc.iceGatheringState === "complete") resolve();
  }));
}

async function connectPreview(pipelineId) {
  if (state.pc) state.pc.close();
  const video = document.getElementById("preview");
  const pc = (state.pc = new RTCPeerConnection());
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (event) => { video.srcObject = new MediaStream([event.track]); };
  pc.onconnectionstatechange = showPreviewState;
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const answer = await json(`/inference_pipelines/${pipelineId}/offer`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
  });
  await pc.setRemoteDescription(answer);
}

function drawChart(canvas, points, key) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  context.fillStyle = "#555";
  context.font = "11px sans-serif";
  const values = points.map((p) => p[key]).filter((v) => typeof v === "number");
  canvas.dataset.points = String(values.length);
  if (!values.length) {
    context.fillText(canvas.dataset.title + ": no points yet", 6, 14);
    return;
  }
  const low = Math.min(0, ...values);
  const high = Math.max(...values) || 1;
  const last = values[values.length - 1];
  context.fillText(`${canvas.dataset.title}: ${last.toFixed(1)} (max ${high.toFixed(1)})`, 6, 14);
  context.strokeStyle = "#1565c0";
  context.lineWidth = 1.5;
  context.beginPath();
  values.forEach((value, index) => {
    const x = 4 + (index / Math.max(1, values.length - 1)) * (width - 8);
    const y = height - 4 - ((value - low) / (high - low || 1)) * (height - 24);
    if (index === 0) context.moveTo(x, y);
    else context.lineTo(x, y);
  });
  context.stroke();
}

async function refreshDetail() {
  const id = state.selected;
  if (!id) return;
  const series = await json(`/coral/metrics/${id}`);
  for (const key of ["fps", "latency_ms", "end_to_end_ms", "detections"]) {
    drawChart(document.getElementById("chart-" + key), series.points, key);
  }
  const listing = await json(`/coral/recordings?pipeline_id=${encodeURIComponent(id)}`);
  const tbody = document.querySelector("#recordings tbody");
  tbody.replaceChildren();
  for (const segment of listing.recordings.slice(-20).reverse()) {
    const row = tbody.insertRow();
    cell(row, segment.start);
    cell(row, segment.end);
    cell(row, segment.frames);
    cell(row, (segment.size / 1024).toFixed(0) + " KiB");
    const play = document.createElement("button");
    play.textContent = "play";
    play.onclick = () => playRecording(segment);
    row.insertCell().append(play);
  }
}

// The recording player draws each frame's boxes from the segment's detections track (its
// lines carry the frame's time in the video, `t`, and boxes in the video's pixels).
const playback = { track: [], drawing: false };

async function playRecording(segment) {
  const player = document.getElementById("playback");
  document.getElementById("playback-box").hidden = false;
  playback.track = segment.track ? await trackRows(segment.track) : [];
  document.getElementById("playback-boxes").dataset.trackRows = String(playback.track.length);
  player.src = segment.url;  // the session cookie goes along; served with HTTP Range, so it seeks
  player.play();
  if (!playback.drawing) {
    playback.drawing = true;
    const loop = () => { drawTrackBoxes(); requestAnimationFrame(loop); };
    loop();
  }
}

async function trackRows(url) {
  const response = await api(url);
  if (!response.ok) return [];
  const rows = [];
  for (const line of (await response.text()).split("\n")) {
    try { rows.push(JSON.parse(line)); } catch (error) { /* a torn last line */ }
  }
  return rows;
}

// The last line at or before `time` (lines are in time order).
function trackRowAt(rows, time) {
  let low = 0, high = rows.length - 1, found = null;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (rows[middle].t <= time + 1e-3) { found = rows[middle]; low = middle + 1; }
    else high = middle - 1;
  }
  return found;
}

function drawTrackBoxes() {
  const player = document.getElementById("playback");
  const canvas = document.getElementById("playback-boxes");
  canvas.width = player.clientWidth;
  canvas.height = player.clientHeight;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const row = player.videoWidth ? trackRowAt(playback.track, player.currentTime) : null;
  const detections = row ? row.detections : [];
  canvas.dataset.boxes = String(detections.length);
  if (!detections.length) return;
  // the video is letterboxed inside its element
  const scale = Math.min(canvas.width / player.videoWidth, canvas.height / player.videoHeight);
  const left = (canvas.width - player.videoWidth * scale) / 2;
  const top = (canvas.height - player.videoHeight * scale) / 2;
  context.lineWidth = 2;
  context.font = "12px sans-serif";
  for (const d of detections) {
    const [x1, y1, x2, y2] = d.xyxy;
    context.strokeStyle = context.fillStyle = "#00e0ff";
    context.strokeRect(left + x1 * scale, top + y1 * scale, (x2 - x1) * scale, (y2 - y1) * scale);
    const label = `${d.class ?? d.class_id ?? ""} ${d.confidence == null ? "" : d.confidence.toFixed(2)}`;
    context.fillText(label.trim(), left + x1 * scale, Math.max(12, top + y1 * scale - 3));
  }
}

function select(pipelineId, name) {
  state.selected = pipelineId;
  state.selectedStatus = null;
  document.getElementById("detail").hidden = !pipelineId;
  if (!pipelineId) {
    if (state.pc) state.pc.close();
    return;
  }
  document.getElementById("detail-name").textContent = name || pipelineId;
  connectPreview(pipelineId).catch((error) => {
    document.getElementById("preview-state").textContent = "error: " + error.message;
  });
  refreshDetail();
}

function fillTable(id, rows) {
  const tbody = document.querySelector(`#${id} tbody`);
  tbody.replaceChildren();
  for (const values of rows) {
    const row = tbody.insertRow();
    values.forEach((value) => cell(row, value));
  }
}

async function refreshRuntime() {
  const runtime = await json("/coral/runtime");
  fillTable("backends", Object.entries(runtime.backends).map(([name, b]) =>
    [name, b.available ? "available" : "unavailable", b.reason || ""]));
  fillTable("patches", Object.entries(runtime.patches).map(([name, p]) =>
    [name, p.status, p.reason || ""]));
  fillTable("plugins", runtime.plugins.map((p) => [p.name, p.status, p.reason || ""]));
}

document.getElementById("add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { model: form.get("model"), source: form.get("source") };
  if (form.get("name")) body.name = form.get("name");
  if (form.get("max_fps")) body.max_fps = Number(form.get("max_fps"));
  const error = document.getElementById("add-error");
  error.textContent = "adding...";
  try {
    await json("/coral/pipelines", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    error.textContent = "";
    event.target.reset();
  } catch (problem) {
    error.textContent = problem.message;
  }
  refreshPipelines();
});

function loop(fn, ms) {
  const run = () => fn().catch((error) => {
    document.getElementById("status").textContent = "error: " + error.message;
  });
  run();
  setInterval(run, ms);
}

loop(refreshPipelines, 2000);
loop(refreshDetail, 3000);
refreshRuntime();
