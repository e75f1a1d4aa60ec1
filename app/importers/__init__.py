"""Importing the user's past (chat exports, documents, browser history) through the same path
as capture: redaction, the durable event queue, origin `import:<source>`."""

#: The chat export formats `engram import-chat` reads (app/importers/chats.py).
CHAT_FORMATS = ("chatgpt", "whatsapp", "jsonl", "locomo")
