// Regenerates docs/configuration.md and config.example.json from the zod schema.
import { writeFileSync } from 'node:fs';
import { configExample, configMarkdown } from '../src/config/doc.js';

writeFileSync('docs/configuration.md', configMarkdown());
writeFileSync('config.example.json', JSON.stringify(configExample(), null, 2) + '\n');
