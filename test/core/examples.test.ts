import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProject } from '../../src/core/project.js';

const dir = path.resolve('repos-template/todo/examples');

describe('the examples in the todo repository', () => {
  it.each(fs.readdirSync(dir).filter((f) => f.endsWith('.json')))('%s is a valid project', (file) => {
    const project = parseProject(`projects/${file}`, fs.readFileSync(path.join(dir, file), 'utf8'));
    expect(project.tasks.length).toBeGreaterThan(0);
  });
});
