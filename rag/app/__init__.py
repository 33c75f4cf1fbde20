"""App: the faces other people and programs use while the product serves — the Gradio chat.

Owns the chat window (`ui`, the only module that imports gradio), its HTML rendering
(`chatview`, with its CSS and script as package data files) and the process's memory policy
while serving (`malloc`). It may import every stage (ingest, models, search, answer) and the
basics; nothing outside it imports it except the CLI.
"""
