"""App: the faces other people and programs use while the product serves.

The Gradio chat: the window (`ui`) and its parts that import gradio — the filter and upload
(`controls`), ratings, export and kept conversations (`keeping`), the Timeline tab (`timeline`) —
over Gradio-free logic: the archive controls (`archive`), the HTML rendering (`chatview`, with its
CSS and script as package data files), ratings (`feedback`), kept conversations (`conversation`)
and the Markdown export (`export`).

Programs: `rag serve` and `rag mcp` (`commands`) — the FastAPI app (`api`) with OpenAI's Chat
Completions (`openai_compat`), Dify's External Knowledge API (`dify`), API keys (`keys`) and the
MCP tools (`mcpserver`), all answering through one `service`.

Shared: the boundary every API value passes (`validation`: checked fields, errors in the caller's
terms) and who may reach the served chat (`access`: logins off the command line, HTTPS); the
process's memory policy while serving is a basic (`rag.memory`), which benchmarks use too. It may
import every stage (ingest, models, search, answer) and the basics; nothing outside it imports it
except the CLI.
"""
