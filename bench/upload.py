"""Upload of a 3 MB PDF to verdict `clean` on the local stack, against the sum of its parts.

Budgets (design.md): the whole at most 2× (blob write + clamd scan of the same bytes + blob
copy), measured in the same run; and the upload's memory peak under 4× the file's size
above the idle process.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

from bench.stack import local_stack
from bench.table import print_table
from devstack.azurite import connection_string
from tests.support.stack import RunningStack

SIZE = 3 * 1024 * 1024 - 4096
RUNS = 5


def _pdf_of_size(size: int) -> bytes:
    """A valid one-page PDF of about `size` bytes: a scanned-looking page (a noise image)."""
    import pikepdf

    side = int((size - 2048) ** 0.5)
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595, 842))
    image = pikepdf.Stream(pdf, os.urandom(side * side))
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height = side, side
    image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceGray, 8
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    page.Contents = pdf.make_stream(b"q 595 0 0 842 0 0 cm /Im0 Do Q")
    buf = io.BytesIO()
    pdf.save(buf, compress_streams=False)
    return buf.getvalue()


def _parts(stack: RunningStack, clamd_address: str, data: bytes) -> tuple[float, float, float]:
    from azure.storage.blob import BlobServiceClient

    from shared_code.scanning import ClamAvScanner

    service = BlobServiceClient.from_connection_string(connection_string(stack.ports))
    container = service.get_container_client("bench")
    if not container.exists():
        container.create_container()
    source = container.get_blob_client(f"src-{time.time_ns()}")
    t = time.perf_counter()
    source.upload_blob(data, overwrite=True)
    write = time.perf_counter() - t
    scanner = ClamAvScanner(clamd_address, timeout=30)
    t = time.perf_counter()
    verdict = scanner.scan(data, blob_name="bench")
    scan = time.perf_counter() - t
    assert verdict.clean
    target = container.get_blob_client(f"dst-{time.time_ns()}")
    t = time.perf_counter()
    target.start_copy_from_url(source.url)
    while target.get_blob_properties().copy.status == "pending":
        time.sleep(0.001)
    copy = time.perf_counter() - t
    return write, scan, copy


def _whole(stack: RunningStack, data: bytes) -> tuple[float, float]:
    """(client-observed, server-side) seconds from upload to the clean verdict.

    Server-side is the attachment row's creation to its last write (the verdict, after the
    copy to `documents`), read from Table storage: it leaves out the client's polling.
    """
    from azure.data.tables import TableClient

    headers = stack.auth()
    t = time.perf_counter()
    answer = requests.post(
        f"{stack.base_url}/api/v1/attachments",
        headers=headers,
        files={"file": ("bench.pdf", io.BytesIO(data), "application/pdf")},
        timeout=60,
    )
    answer.raise_for_status()
    attachment_id = answer.json()["id"]
    url = f"{stack.base_url}/api/v1/attachments/{attachment_id}"
    while True:
        status = requests.get(url, headers=headers, timeout=10).json()["status"]
        if status != "scanning":
            break
        time.sleep(0.02)  # a gentle poll: the server shares its cores with this client
    client = time.perf_counter() - t
    assert status == "clean", status
    table = TableClient.from_connection_string(connection_string(stack.ports), "attachments")
    row = table.get_entity("A12345", attachment_id)
    created = datetime.fromisoformat(row["createdAt"].replace("Z", "+00:00"))
    server = (row.metadata["timestamp"].replace(tzinfo=timezone.utc) - created).total_seconds()
    return client, server


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main() -> None:
    with local_stack() as (stack, clamd):
        data = _pdf_of_size(SIZE)
        _whole(stack, _pdf_of_size(64 * 1024))  # warm-up: imports, clients, connection pools
        servers, sums, rows = [], [], []
        for _ in range(RUNS):
            write, scan, copy = _parts(stack, clamd.address, data)
            client, server = _whole(stack, data)
            sums.append(write + scan + copy)
            servers.append(server)
            rows.append(
                [
                    f"{write * 1000:.0f}",
                    f"{scan * 1000:.0f}",
                    f"{copy * 1000:.0f}",
                    f"{(write + scan + copy) * 1000:.0f}",
                    f"{server * 1000:.0f}",
                    f"{client * 1000:.0f}",
                ]
            )
        print_table(["write ms", "scan ms", "copy ms", "sum ms", "upload→clean ms (server)", "(client-observed)"], rows)
        ratio = statistics.median(servers) / statistics.median(sums)
        print(f"median ratio {ratio:.2f}× (budget 2×): {'within budget' if ratio <= 2 else 'OVER BUDGET'}")

        # Memory: a fresh stack's first 3 MB upload, after a small one has loaded every module.
        stack.stop()
        stack.start()
        _whole(stack, _pdf_of_size(64 * 1024))
        pid = stack.proc.pid
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
        idle = _status_kb(pid, "VmRSS")
        _whole(stack, data)
        peak = _status_kb(pid, "VmHWM")
        growth = (peak - idle) * 1024 / len(data)
        print_table(
            ["idle RSS MB", "peak RSS MB", "peak above idle / file size"],
            [[f"{idle / 1024:.1f}", f"{peak / 1024:.1f}", f"{growth:.2f}×"]],
        )
        print(f"memory: {'within budget' if growth < 4 else 'OVER BUDGET'} (budget under 4×)")


if __name__ == "__main__":
    main()
