"""The smallest sessionstream app: publish from Python, subscribe from the browser.

Run:   python -m uvicorn examples.quickstart:app
Open:  http://127.0.0.1:8000/  and  curl -X POST 'http://127.0.0.1:8000/announce?text=hi'
"""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from sessionstream.fastapi import StreamHub

hub = StreamHub()
app = FastAPI()
app.include_router(hub.router)


@app.post("/announce")
async def announce(text: str) -> dict[str, str]:
    return {"id": hub.publish("news", {"text": text}, event="announcement")}


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return """<!doctype html>
<ul id="log"></ul>
<script>
  const source = new EventSource("/stream/sse?channel=news");
  source.addEventListener("announcement", (e) => {
    const item = document.createElement("li");
    item.textContent = `${e.lastEventId}: ${JSON.parse(e.data).text}`;
    document.getElementById("log").append(item);
  });
</script>"""
