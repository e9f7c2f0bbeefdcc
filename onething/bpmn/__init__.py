"""Everything about BPMN files: load, validate, render."""
