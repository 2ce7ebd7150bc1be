"""cfai: one typed declaration of an AI platform on Cloudflare."""
