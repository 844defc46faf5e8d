-- Which of the pipeline's tables exist yet (the first execution creates them).
SELECT table_name FROM information_schema.tables WHERE table_schema = 'airlines';
