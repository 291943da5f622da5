"""`mlrelay report PIPELINE`: one self-contained HTML page of a pipeline's run history (the
summaries under `history/<pipeline>/`), charts drawn as inline SVG, no script, no outside URL.

`numbers` formats the figures, `charts` draws the SVG, `page` puts the page together, `source`
finds the bucket the history is read from."""
