"""RestoreFormer and RestoreFormer++ (wzhouxiff): architecture (``arch``) and the two methods (``method``)."""
