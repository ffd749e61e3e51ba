-- Step numbers as people read them: 1-based, as `platform rollouts show`, the Grafana dashboard and
-- the rollout's details line ("step 2 of 4") count. `step` stays what it was, the workflow's
-- 0-based step index (rows written before keep their meaning); `step_number` is step + 1. As a
-- DEFAULT it is also computed for rows written before this migration (parts without the column
-- evaluate the expression on read), so every row has it.
ALTER TABLE canary_judgements ADD COLUMN IF NOT EXISTS step_number UInt16 DEFAULT step + 1 COMMENT '1-based step number of the judgement (step 1 = the first step), as platform rollouts show prints it' AFTER step;
ALTER TABLE canary_judgements COMMENT COLUMN step '0-based step index in the workflow (step_number = step + 1 is the one people read)';
ALTER TABLE rollout_events ADD COLUMN IF NOT EXISTS step_number UInt16 DEFAULT step + 1 COMMENT '1-based step number the rollout was at (step 1 = the first step)' AFTER step;
ALTER TABLE rollout_events COMMENT COLUMN step '0-based step index in the workflow (step_number = step + 1 is the one people read)';
ALTER TABLE rollout_routing ADD COLUMN IF NOT EXISTS step_number UInt16 DEFAULT step + 1 COMMENT '1-based step number when published (step 1 = the first step)' AFTER step;
ALTER TABLE rollout_routing COMMENT COLUMN step '0-based step index when published (step_number = step + 1 is the one people read)';
