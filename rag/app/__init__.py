"""App: the faces other people and programs use while the product serves — the Gradio chat.

Owns the chat window (`ui`, the only module that imports gradio), its HTML rendering
(`chatview`, with its CSS and script as package data files), the boundary every API value
passes (`validation`: checked fields, errors in the caller's terms), who may reach the served
app (`access`: logins off the command line, HTTPS) and the process's memory policy while
serving (`malloc`). It may import every stage (ingest, models, search, answer) and the
basics; nothing outside it imports it except the CLI.
"""
