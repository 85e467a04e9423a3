"""demo: the Gradio browser page over the engine, video and medical front doors."""
