"""The chat-model wing: the `ChatModel` port (port.py), its backends (llamacpp.py in-process,
openai_compat.py over HTTP), the scheduler that puts chat before memory work for every backend
(scheduler.py), and the scripted fake for tests (fakes.py)."""
