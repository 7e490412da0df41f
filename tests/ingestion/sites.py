"""A loopback web server for crawl tests: pages with ETag / Last-Modified that answer
conditional requests with 304, a log of every request, and a blog builder."""

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LONG_PARAGRAPH = (
    "I wrote this on the train home, as I write most things, with the notebook on my knee and the "
    "window fogging up. The point of the piece is simple: {topic} rewards patience more than talent, "
    "and the people who get good at it are the ones who keep a log and read it back every month. "
    "Mine has entries going back six years now, and the early ones are embarrassing in a useful way."
)


class Site:
    """path -> (status, headers, body); ETag from the body; a log of (method, path, status, headers)."""

    def __init__(self, *, conditional=True):
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.log: list[tuple[str, int, dict]] = []
        self.conditional = conditional
        self.delay = 0.0
        self.connections = 0  # TCP connections accepted
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait on a kept connection

            def setup(self):
                site.connections += 1
                super().setup()

            def do_GET(self):
                if site.delay:
                    time.sleep(site.delay)
                route = site.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"nope"))
                status, headers, body = route() if callable(route) else route
                headers = dict(headers)
                if status == 200 and site.conditional:
                    etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'  # noqa: S324 (an ETag, not security)
                    headers.setdefault("ETag", etag)
                    if self.headers.get("If-None-Match") == headers["ETag"]:
                        status, body = 304, b""
                site.log.append((self.path, status, dict(self.headers)))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def add(self, path, body, content_type="text/html; charset=utf-8", status=200, **headers) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (status, {"Content-Type": content_type, **headers}, data)
        return self.base + path

    def add_sequence(self, path, *answers):
        """Answer (status, body) pairs in turn, the last one for ever after."""
        answers = list(answers)

        def answer():
            status, body = answers.pop(0) if len(answers) > 1 else answers[0]
            return status, {"Content-Type": "text/html; charset=utf-8"}, body.encode()

        self.routes[path] = answer
        return self.base + path

    def remove(self, path):
        self.routes.pop(path, None)

    def paths(self, status=None) -> list[str]:
        return [path for path, code, _ in self.log if status is None or code == status]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def post_html(title: str, topic: str, *, links: str = "", paragraphs: int = 2) -> str:
    body = "".join(f"<p>{LONG_PARAGRAPH.format(topic=topic)}</p>" for _ in range(paragraphs))
    return (
        f"<html><head><title>{title}</title></head><body>"
        f"<header><nav><a href='/'>Home</a> <a href='/about'>About</a> <a href='/tags/'>Tags</a></nav></header>"
        f"<article><h1>{title}</h1>{body}</article>"
        f"<footer>{links}<p>Copyright the author.</p></footer></body></html>"
    )


def rss(site: Site, entries: list[tuple[str, str, str]], *, full_text: bool) -> str:
    """RSS 2.0 of (path, title, topic); with the whole post in content:encoded, or a teaser."""
    items = []
    for path, title, topic in entries:
        content = (
            f"<content:encoded><![CDATA[<p>{LONG_PARAGRAPH.format(topic=topic)}</p>"
            f"<p>{LONG_PARAGRAPH.format(topic=topic + ' again')}</p>]]></content:encoded>"
            if full_text
            else f"<description>A short teaser about {topic}.</description>"
        )
        items.append(f"<item><title>{title}</title><link>{site.base}{path}</link><guid>{path}</guid>{content}</item>")
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>Test blog</title><link>{site.base}/</link>{''.join(items)}</channel></rss>"
    )
