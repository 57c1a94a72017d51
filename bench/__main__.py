"""Run every benchmark and print the figures (BENCH_DATABASE_URL selects the database)."""

from bench import bench_dashboard, bench_deadline_scan, bench_documents

if __name__ == "__main__":
    bench_documents.run()
    bench_deadline_scan.run()
    bench_dashboard.run()
