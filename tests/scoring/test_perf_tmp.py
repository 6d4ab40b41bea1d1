import time, cProfile, pstats, io
import pytest

@pytest.mark.django_db
def test_perf(active_model, seed_population):
    from scoring import services
    t=time.time(); ids = seed_population(1500); print("seed", time.time()-t)
    t=time.time(); run = services.rescore_run_start(purpose="automated_scoring", requester="job:t", chunk_size=1500); print("plan", time.time()-t)
    [chunk] = services.rescore_pending_chunks(run_id=run.id)
    pr = cProfile.Profile(); pr.enable()
    t=time.time(); services.rescore_chunk(run_id=run.id, customer_ids=chunk); print("chunk", time.time()-t)
    pr.disable()
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(35); print(s.getvalue()[:7000])
