"""The reference service: FastAPI routes, a Gradio demo, three handler modes."""
