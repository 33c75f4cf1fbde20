"""Evaluation: measuring the product — eval sets, retrieval and answer metrics, reports, benches.

Owns `rag eval` (retrieval metrics, answer accuracy, citation precision/recall, refusals) and
`rag bench` (decode speed, kept prefixes, scale over synthetic corpora, the load test of a served
chat, the stock LangChain recipe compared item by item). It may import every stage and the
basics; never the app (a served chat is driven as another process, over HTTP), and nothing
outside it imports it except the CLI.
"""
