"""Classify an image on a board running the digit firmware (firmware-example/PROTOCOL.md).
Usage: python3 board_client.py PORT IMAGE   (pip install pyserial pillow)"""
import struct, sys, zlib
import serial
from PIL import Image

def cobs(data):  # blocks of a code byte and up to 254 data bytes; a zero ends a block
    out = bytearray()
    for block in data.split(b"\0"):
        while len(block) >= 254:
            out += b"\xff" + block[:254]; block = block[254:]
        out += bytes([len(block) + 1]) + block
    return bytes(out)

def uncobs(data):
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]; out += data[i + 1:i + code]; i += code
        if code < 0xFF and i < len(data): out += b"\0"
    return bytes(out)

def ask(port, kind, payload, id=1):  # header: version 1, id, kind, length; CRC-32 after
    frame = struct.pack("<BHBH", 1, id, kind, len(payload)) + payload
    port.write(b"\0" + cobs(frame + struct.pack("<I", zlib.crc32(frame))) + b"\0")
    while True:  # text before the first frame, and answers to other ids, are skipped
        raw = port.read_until(b"\0")
        if not raw.endswith(b"\0"): sys.exit("no answer from " + port.name)
        f = uncobs(raw[:-1])
        if len(f) >= 10 and zlib.crc32(f[:-4]) == struct.unpack("<I", f[-4:])[0] and f[1:3] == struct.pack("<H", id):
            return f[6:-4]

port = serial.Serial(sys.argv[1], 115200, timeout=5)
image = Image.open(sys.argv[2]).convert("L").resize((28, 28))
pixels = image.tobytes()
if sum(pixels[:28]) > 28 * 128: pixels = bytes(255 - p for p in pixels)  # dark ink on light paper: invert
a = ask(port, 0x02, struct.pack("<HH", 28, 28) + pixels)
if a[0] != 0: sys.exit(f"the board refused: status {a[0]}")
cluster, label, confidence = struct.unpack("<BBf", a[10:16])
rest = a[17 + 4 * a[16]:]  # the extension records (tag, length, value) after the K probabilities
while rest and rest[0] != 2: rest = rest[2 + rest[1]:]  # tag 2: novelty score (f32), known (u8)
novelty = f", novelty {struct.unpack('<f', rest[2:6])[0]:.3f} ({'known' if rest[6] else 'not a digit'})" if rest else ""
unit = ["(not measured)", "cycles", "instructions", "us"][min(a[1], 3)]
print(f"cluster {cluster}, digit {label if label != 255 else '?'}, confidence {confidence:.3f}{novelty}, {struct.unpack('<Q', a[2:10])[0]} {unit}")
